package orchestrator

import (
	"fmt"

	"github.com/legacyvm/legacyvm/internal/winguest"
)

// buildAnswerMedia renders the instance's answer file and wraps it in an
// ISO9660+Joliet image: Autounattend.xml for installation from media,
// Unattend.xml for the specialize pass of a sysprepped golden image. The
// returned bytes hold the product key: the caller uploads and clears them.
func buildAnswerMedia(dv *desiredVM, sec secrets) ([]byte, error) {
	vm := dv.Instance.VM
	preset, ok := winguest.PresetFor(string(vm.OS))
	if !ok {
		return nil, fmt.Errorf("no Windows preset for %s", vm.OS)
	}
	w := vm.Windows
	p := winguest.AnswerParams{
		ProcessorArchitecture: preset.ProcessorArchitecture,
		ComputerName:          dv.Instance.ComputerName,
		ProductKey:            sec.key,
		AdminPassword:         sec.adminPassword,
	}
	if w != nil {
		p.TimeZone = w.TimeZone
		p.UILanguage, p.SystemLocale, p.UserLocale = w.Locale, w.Locale, w.Locale
		p.InputLocale = w.InputLocale
		p.AdminUser = w.AdminUser
		p.Activate = w.Activate
	}
	if l := dv.License; l != nil {
		p.KMSHost = l.KMSHost
	}
	var (
		name string
		xml  []byte
		err  error
	)
	if in := dv.Install; in != nil {
		p.ImageIndex = in.ImageIndex
		if in.ImageIndex == 0 {
			p.ImageName = winguest.ImageName(in.Edition)
		}
		name = "Autounattend.xml"
		xml, err = winguest.Autounattend(p)
	} else {
		name = "Unattend.xml"
		xml, err = winguest.SpecializeUnattend(p)
	}
	if err != nil {
		return nil, err
	}
	defer clear(xml)
	return winguest.AnswerISO([]winguest.File{{Name: name, Data: xml}}, "LEGACYVM")
}
