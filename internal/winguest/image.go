package winguest

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
)

// Golden-image builds (win7-spec §4.1): Windows is installed from the
// user's media with an answer file that holds no product key, the build's
// steps run at the one automatic logon, and sysprep generalizes the system
// and shuts it down. The per-VM specialize pass of each clone is then
// answered by SpecializeUnattend on the clone's own answer media
// (win7-spec §4.3 option B).

// GeneralizeName is the name of the generalize-pass answer file on the
// build's answer media; the build copies it next to sysprep.exe and passes
// it with /unattend.
const GeneralizeName = "legacyvm-generalize.xml"

// SysprepCommand generalizes the installation, leaves it to start with OOBE
// (whose specialize pass the clone's answer media answers) and powers the
// guest off, which legacyvm waits for (win7-spec §4.1 step 3, [S32]).
const SysprepCommand = `%WINDIR%\System32\Sysprep\sysprep.exe /generalize /oobe /shutdown /quiet /unattend:%WINDIR%\System32\Sysprep\` + GeneralizeName

// copyGeneralizeCommand finds the answer media by the generalize file it
// carries (drive letters depend on the device order) and copies the file
// next to sysprep.exe.
const copyGeneralizeCommand = `cmd /c for %d in (D E F G H I J K L M N O P Q R S T U V W X Y Z) do if exist %d:\` + GeneralizeName +
	` copy /y %d:\` + GeneralizeName + ` %WINDIR%\System32\Sysprep\` + GeneralizeName

// PhaseCommand returns the command that writes "LEGACYVM phase NAME" to the
// first serial port, which legacyvm reads to report a build's progress. The
// redirection comes first: "count=2>COM1" would redirect handle 2.
func PhaseCommand(phase string) string {
	return "cmd /c >COM1 echo LEGACYVM phase " + phase
}

// ImageBuildParams is everything the answer file of an image build says.
// It has no product key: a generalized image must hold none, and Windows 7
// Setup installs without one when the key page is not shown (the key is
// given per clone, in its specialize pass).
type ImageBuildParams struct {
	// ProcessorArchitecture of the media: "amd64" or "x86".
	ProcessorArchitecture string
	// ImageIndex (1-based) or ImageName selects the image in install.wim.
	ImageIndex int
	ImageName  string
	// Locale and time zone, as in AnswerParams (defaults en-US, UTC).
	TimeZone, UILanguage, InputLocale, SystemLocale, UserLocale string
	// BuildUser is the local administrator that setup creates for the
	// build's one automatic logon; the build disables it before
	// generalizing. BuildPassword is its one-time password: use
	// NewBuildPassword, never a password anybody knows.
	BuildUser     string
	BuildPassword string
	// MediaCount is how many extra CD-ROMs (drivers, agent, updates) the
	// build attaches; it is reported, the steps install from them.
	MediaCount int
	// Steps run in order at the automatic logon, before generalize.
	Steps []string
	// SkipRearm sets Microsoft-Windows-Security-SPP/SkipRearm=1: sysprep
	// then keeps the activation state and does not use one of Windows 7's
	// (at most three) rearms. The default (false, SkipRearm=0) rearms once,
	// so that every clone starts its own full grace period; a fresh
	// installation has rearms left for that.
	SkipRearm bool
	// PartitionLayout and DiskID as in AnswerParams.
	PartitionLayout string
	DiskID          int
}

// Format prints p with the build password hidden, for every verb.
func (p ImageBuildParams) Format(f fmt.State, verb rune) {
	type plain ImageBuildParams
	q := plain(p)
	if q.BuildPassword != "" {
		q.BuildPassword = "(hidden)"
	}
	fmt.Fprintf(f, "%+v", q)
}

// BuildComputerName is the computer name of the build VM (sysprep drops it;
// each clone gets its own in its specialize pass).
const BuildComputerName = "LEGACYVM-IMAGE"

// DefaultBuildUser is the build account when none is given.
const DefaultBuildUser = "legacyvm-build"

// NewBuildPassword returns a random one-time password for the build
// account (24 characters from letters and digits, with each class
// present).
func NewBuildPassword() (string, error) {
	const (
		lower  = "abcdefghijkmnpqrstuvwxyz"
		upper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
		digits = "23456789"
	)
	all := lower + upper + digits
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("build password: %w", err)
	}
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = all[int(c)%len(all)]
	}
	out[0], out[1], out[2] = lower[int(b[0])%len(lower)], upper[int(b[1])%len(upper)], digits[int(b[2])%len(digits)]
	return string(out), nil
}

// ImageBuildAutounattend returns Autounattend.xml for an image build:
// windowsPE as for an installation (no product key, WillShowUI=Never),
// specialize (build computer name, time zone, SkipAutoActivation: the image
// is never activated), and oobeSystem with one automatic logon of the build
// account whose first-logon commands report the phases on COM1, run the
// steps, delete the cached answer files, disable the build account and run
// sysprep (SysprepCommand) as the last command.
func ImageBuildAutounattend(p ImageBuildParams) ([]byte, error) {
	if p.BuildUser == "" {
		p.BuildUser = DefaultBuildUser
	}
	if p.BuildPassword == "" {
		return nil, &ParamError{Field: "build password", Problem: "is required (NewBuildPassword)"}
	}
	if p.MediaCount < 0 {
		return nil, &ParamError{Field: "media count", Problem: "is negative"}
	}
	a := AnswerParams{
		ProcessorArchitecture: p.ProcessorArchitecture,
		ComputerName:          BuildComputerName,
		TimeZone:              p.TimeZone,
		UILanguage:            p.UILanguage, InputLocale: p.InputLocale, SystemLocale: p.SystemLocale, UserLocale: p.UserLocale,
		AdminUser:          p.BuildUser,
		AdminPassword:      p.BuildPassword,
		ImageIndex:         p.ImageIndex,
		ImageName:          p.ImageName,
		PartitionLayout:    p.PartitionLayout,
		DiskID:             p.DiskID,
		FirstLogonCommands: p.Steps,
	}
	a = a.withDefaults()
	if err := a.validate(true); err != nil {
		return nil, err
	}
	doc := newDoc()
	oobe := a.oobeSystem(false)
	// Replace the installation's first-logon commands with the build's.
	for i := range oobe.Components {
		if shell, ok := oobe.Components[i].(shellSetupOOBEXML); ok {
			shell.FirstLogonCommands = nil
			for j, c := range p.buildCommands(a.AdminUser) {
				shell.FirstLogonCommands = append(shell.FirstLogonCommands, synchronousCommandXML{
					Action: actionAdd, Order: j + 1, Description: c.description, CommandLine: c.commandLine,
				})
			}
			oobe.Components[i] = shell
		}
	}
	doc.Settings = append(doc.Settings, a.windowsPE(), a.specialize(), oobe)
	return marshalDoc(doc)
}

// StepDescription is the Description of the n-th (1-based) build step in
// the answer file.
func StepDescription(n int) string { return "Image step " + strconv.Itoa(n) }

func (p ImageBuildParams) buildCommands(user string) []command {
	cs := []command{{"Report phase: media", PhaseCommand("media count=" + strconv.Itoa(p.MediaCount))}}
	cs = append(cs, command{"Report phase: steps", PhaseCommand("steps count=" + strconv.Itoa(len(p.Steps)))})
	for i, s := range p.Steps {
		cs = append(cs, command{StepDescription(i + 1), s})
	}
	cs = append(cs,
		command{"Delete cached answer files", CleanupCommand},
		command{"Copy the generalize answer file next to sysprep", copyGeneralizeCommand},
		command{"Disable the build account", "net user " + quoteUser(user) + " /active:no"},
		command{"Report phase: generalize", PhaseCommand("generalize")},
		command{"Generalize and power off: legacyvm waits for this", SysprepCommand},
	)
	return cs
}

func quoteUser(u string) string {
	if strings.ContainsAny(u, " &^%") {
		return `"` + u + `"`
	}
	return u
}

// GeneralizeUnattend returns the answer file sysprep /generalize uses
// (passed with /unattend): the generalize pass only.
// Microsoft-Windows-PnpSysprep/PersistAllDeviceInstalls keeps the installed
// drivers (every clone has the same virtual hardware) and
// Microsoft-Windows-Security-SPP/SkipRearm says whether to rearm
// (win7-spec §2.2, §4.1). The specialize and oobeSystem passes of each
// clone come from its own answer media (SpecializeUnattend).
func GeneralizeUnattend(arch string, skipRearm bool) ([]byte, error) {
	switch arch {
	case "amd64", "x86":
	default:
		return nil, &ParamError{Field: "processor architecture", Problem: fmt.Sprintf("%q is neither \"amd64\" nor \"x86\"", arch)}
	}
	rearm := 0
	if skipRearm {
		rearm = 1
	}
	doc := newDoc()
	doc.Settings = append(doc.Settings, settingsXML{Pass: passGeneralize, Components: []any{
		pnpSysprepXML{componentAttrs: newComponent(compPnpSysprep, arch), PersistAllDeviceInstalls: true},
		sppXML{componentAttrs: newComponent(compSPP, arch), SkipRearm: rearm},
	}})
	return marshalDoc(doc)
}
