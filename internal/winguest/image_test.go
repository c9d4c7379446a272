package winguest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const fakeBuildPassword = "Fake-Build-Passw0rd-For-Tests"

type imageCase struct {
	name string
	gen  func() ([]byte, error)
	arch string
	// required components (pass/name).
	required []string
}

func imageCases() []imageCase {
	build := ImageBuildParams{
		ProcessorArchitecture: "amd64", ImageName: "Windows 7 PROFESSIONAL",
		BuildPassword: fakeBuildPassword, MediaCount: 2,
		Steps: []string{`cmd /c for %d in (D E F G) do if exist %d:\viostor\w7\amd64\viostor.inf pnputil -i -a %d:\viostor\w7\amd64\*.inf`, `cmd /c echo ready > C:\ready.txt`},
	}
	return []imageCase{
		{name: "image-build-x64", arch: "amd64", gen: func() ([]byte, error) { return ImageBuildAutounattend(build) },
			required: []string{"windowsPE/Microsoft-Windows-Setup", "specialize/Microsoft-Windows-Shell-Setup", "specialize/Microsoft-Windows-Security-SPP-UX", "oobeSystem/Microsoft-Windows-Shell-Setup"}},
		{name: "image-build-x86", arch: "x86", gen: func() ([]byte, error) {
			p := build
			p.ProcessorArchitecture, p.ImageName, p.ImageIndex, p.Steps, p.MediaCount = "x86", "", 3, nil, 0
			return ImageBuildAutounattend(p)
		}, required: []string{"windowsPE/Microsoft-Windows-Setup", "oobeSystem/Microsoft-Windows-Shell-Setup"}},
		{name: "generalize-x64", arch: "amd64", gen: func() ([]byte, error) { return GeneralizeUnattend("amd64", false) },
			required: []string{"generalize/Microsoft-Windows-PnpSysprep", "generalize/Microsoft-Windows-Security-SPP"}},
		{name: "generalize-x86-skiprearm", arch: "x86", gen: func() ([]byte, error) { return GeneralizeUnattend("x86", true) },
			required: []string{"generalize/Microsoft-Windows-PnpSysprep", "generalize/Microsoft-Windows-Security-SPP"}},
	}
}

func imagePlaceholders(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte(fakeBuildPassword), []byte(pwHolder))
}

func TestImageAnswerFilesGolden(t *testing.T) {
	for _, c := range imageCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := c.gen()
			if err != nil {
				t.Fatal(err)
			}
			got := imagePlaceholders(out)
			if bytes.Contains(got, []byte(fakeBuildPassword)) {
				t.Fatal("the build password survived the placeholders")
			}
			path := filepath.Join("testdata", c.name+".xml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (run go test -update and review the diff)\n%s", path, firstDiff(want, got))
			}
		})
	}
}

// TestImageAnswerFilesMatchPassTable checks the image answer files against
// win7-spec §2.2 (the pass table the installation files are checked with):
// every component in a pass the table pairs it with, every setting listed,
// the four component attributes with the media's architecture, list items
// and only they with wcm:action="add".
func TestImageAnswerFilesMatchPassTable(t *testing.T) {
	for _, c := range imageCases() {
		t.Run(c.name, func(t *testing.T) {
			out, err := c.gen()
			if err != nil {
				t.Fatal(err)
			}
			root := parseAnswer(t, out)
			if root.name.Space != NamespaceUnattend || root.name.Local != "unattend" {
				t.Fatalf("root element is {%s}%s", root.name.Space, root.name.Local)
			}
			var seen []string
			for _, s := range root.children {
				pass, _ := s.attr("", "pass")
				comps, ok := passTable[pass]
				if s.name.Local != "settings" || !ok {
					t.Errorf("unexpected %s pass=%q", s.name.Local, pass)
					continue
				}
				for _, comp := range s.children {
					name, _ := comp.attr("", "name")
					allowed, ok := comps[name]
					if !ok {
						t.Errorf("pass %s holds %q, which the table does not pair with it", pass, name)
						continue
					}
					seen = append(seen, pass+"/"+name)
					for k, v := range map[string]string{"processorArchitecture": c.arch, "publicKeyToken": "31bf3856ad364e35", "language": "neutral", "versionScope": "nonSxS"} {
						if got, _ := comp.attr("", k); got != v {
							t.Errorf("%s/%s: %s=%q, want %q", pass, name, k, got, v)
						}
					}
					for _, setting := range comp.children {
						if !slices.Contains(allowed, setting.name.Local) {
							t.Errorf("%s/%s emits %s, which the table does not list", pass, name, setting.name.Local)
						}
					}
				}
			}
			for _, r := range c.required {
				if !slices.Contains(seen, r) {
					t.Errorf("missing component %s", r)
				}
			}
			root.walk(func(n *node) {
				act, has := n.attr(NamespaceWCM, "action")
				isItem := slices.Contains(listItems, n.name.Local)
				if isItem && (!has || act != "add") || !isItem && has {
					t.Errorf("%s: wcm:action=%q (list item: %v)", n.path, act, isItem)
				}
			})
		})
	}
}

func TestImageBuildAnswerFileSettings(t *testing.T) {
	c := imageCases()[0]
	out, err := c.gen()
	if err != nil {
		t.Fatal(err)
	}
	v := values(parseAnswer(t, out))
	// No product key anywhere: the image must hold none.
	if k := v["windowsPE/Microsoft-Windows-Setup/UserData/ProductKey/Key"]; len(k) != 0 {
		t.Errorf("windowsPE key present: %q", k)
	}
	if k := v["specialize/Microsoft-Windows-Shell-Setup/ProductKey"]; len(k) != 0 {
		t.Errorf("specialize key present: %q", k)
	}
	if got := v["windowsPE/Microsoft-Windows-Setup/UserData/ProductKey/WillShowUI"]; !slices.Equal(got, []string{"Never"}) {
		t.Errorf("key page WillShowUI = %q, want Never (setup without a key)", got)
	}
	if got := v["specialize/Microsoft-Windows-Security-SPP-UX/SkipAutoActivation"]; !slices.Equal(got, []string{"true"}) {
		t.Errorf("SkipAutoActivation = %q: the image must never be activated", got)
	}
	cmds := v["oobeSystem/Microsoft-Windows-Shell-Setup/FirstLogonCommands/SynchronousCommand/CommandLine"]
	descs := v["oobeSystem/Microsoft-Windows-Shell-Setup/FirstLogonCommands/SynchronousCommand/Description"]
	if len(cmds) == 0 || cmds[len(cmds)-1] != SysprepCommand {
		t.Fatalf("last first-logon command = %q, want sysprep", cmds)
	}
	for _, want := range []string{"/generalize", "/oobe", "/shutdown", "/unattend:"} {
		if !strings.Contains(SysprepCommand, want) {
			t.Errorf("sysprep command lacks %s", want)
		}
	}
	// Order: media phase, steps phase, the steps in order, cleanup, copy of
	// the generalize file, account disabled, generalize phase, sysprep.
	wantDescs := []string{"Report phase: media", "Report phase: steps", StepDescription(1), StepDescription(2),
		"Delete cached answer files", "Copy the generalize answer file next to sysprep", "Disable the build account",
		"Report phase: generalize", "Generalize and power off: legacyvm waits for this"}
	if !slices.Equal(descs, wantDescs) {
		t.Errorf("first-logon commands:\n got  %q\n want %q", descs, wantDescs)
	}
	if !slices.Contains(cmds, PhaseCommand("media count=2")) || !slices.Contains(cmds, "net user legacyvm-build /active:no") {
		t.Errorf("commands %q", cmds)
	}
	if slices.Contains(cmds, PowerOffCommand) {
		t.Error("a build must not power off before sysprep")
	}
	if got := v["oobeSystem/Microsoft-Windows-Shell-Setup/AutoLogon/LogonCount"]; !slices.Equal(got, []string{"1"}) {
		t.Errorf("LogonCount = %q", got)
	}

	g, err := GeneralizeUnattend("amd64", false)
	if err != nil {
		t.Fatal(err)
	}
	gv := values(parseAnswer(t, g))
	if got := gv["generalize/Microsoft-Windows-Security-SPP/SkipRearm"]; !slices.Equal(got, []string{"0"}) {
		t.Errorf("SkipRearm = %q, want 0 (rearm once: clones start a full grace period)", got)
	}
	if got := gv["generalize/Microsoft-Windows-PnpSysprep/PersistAllDeviceInstalls"]; !slices.Equal(got, []string{"true"}) {
		t.Errorf("PersistAllDeviceInstalls = %q", got)
	}
	if strings.Contains(string(g), "specialize") || strings.Contains(string(g), "ProductKey") {
		t.Error("the generalize file holds more than the generalize pass")
	}
}

func TestImageBuildRefuses(t *testing.T) {
	if _, err := ImageBuildAutounattend(ImageBuildParams{ProcessorArchitecture: "amd64", ImageIndex: 1}); err == nil {
		t.Error("no build password: no error")
	}
	_, err := ImageBuildAutounattend(ImageBuildParams{ProcessorArchitecture: "arm", ImageIndex: 1, BuildPassword: fakeBuildPassword, Steps: []string{" "}})
	if err == nil || !strings.Contains(err.Error(), "processor architecture") || !strings.Contains(err.Error(), "first-logon command 1") {
		t.Errorf("err = %v", err)
	}
	if err != nil && strings.Contains(err.Error(), fakeBuildPassword) {
		t.Error("error quotes the build password")
	}
	if _, err := GeneralizeUnattend("ia64", false); err == nil {
		t.Error("generalize for ia64: no error")
	}
	if s := fmtSprint(ImageBuildParams{BuildPassword: fakeBuildPassword}); strings.Contains(s, fakeBuildPassword) {
		t.Errorf("printing the params shows the password: %s", s)
	}
}

func TestNewBuildPassword(t *testing.T) {
	a, err := NewBuildPassword()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewBuildPassword()
	if a == b || len(a) != 24 || !strings.ContainsAny(a, "23456789") || strings.ToLower(a) == a || strings.ToUpper(a) == a {
		t.Errorf("passwords %q %q", a, b)
	}
}

func TestImageAnswerFilesXMLLint(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint not installed (Debian package libxml2-utils); CI=true requires it")
		}
		t.Skip("xmllint not installed")
	}
	for _, c := range imageCases() {
		out, err := c.gen()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(xmllint, "--noout", "--nonet", "-")
		cmd.Stdin = bytes.NewReader(imagePlaceholders(out))
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: xmllint: %v\n%s", c.name, err, msg)
		}
	}
}

func fmtSprint(v any) string { return fmt.Sprint(v) }
