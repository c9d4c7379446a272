package main

import "github.com/legacyvm/legacyvm/internal/event"

// hintText words a hint of the engine as the command line that does it
// (object is the VM or other object the hint is about; "" when none).
func hintText(h event.Hint, object string) string {
	vm := object
	if vm == "" {
		vm = "VM"
	}
	switch h {
	case event.HintNone:
		return ""
	case event.HintApply:
		return "run legacyvm apply PROFILE"
	case event.HintDestroy:
		return "run legacyvm destroy PROFILE"
	case event.HintRestart:
		return "legacyvm stop " + vm + " && legacyvm start " + vm
	case event.HintReset:
		return "legacyvm reset " + vm
	case event.HintImageBuild:
		return "legacyvm image build PROFILE IMAGE"
	case event.HintVerifyOnHost:
		return "run legacyvm verify on the libvirt host itself"
	}
	return string(h)
}
