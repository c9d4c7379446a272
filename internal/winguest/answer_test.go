package winguest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/legacyvm/legacyvm/internal/license"
)

var update = flag.Bool("update", false, "rewrite testdata/*.xml golden files")

// Obviously fake secrets that match the formats. Golden files hold
// placeholders instead.
const (
	fakeKey      = "BCDFG-HJKMP-QRTVW-XY234-6789B"
	fakePassword = "Fake-Passw0rd-For-Tests"
	keyHolder    = "@@PRODUCT_KEY@@"
	pwHolder     = "@@ADMIN_PASSWORD@@"
)

func mustKey(t testing.TB) license.Key {
	t.Helper()
	k, err := license.ParseKey(fakeKey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type answerCase struct {
	name    string
	install bool // Autounattend; otherwise SpecializeUnattend
	p       AnswerParams
}

func answerCases(t testing.TB) []answerCase {
	k := mustKey(t)
	return []answerCase{
		{name: "install-x64", install: true, p: AnswerParams{
			ProcessorArchitecture: "amd64", ComputerName: "ACCT-1", ProductKey: k,
			TimeZone: "W. Europe Standard Time", UILanguage: "en-US", SystemLocale: "en-GB", UserLocale: "en-GB", InputLocale: "0809:00000809",
			Owner: "Lab Owner", Organization: "Example Ltd", AdminUser: "labadmin", AdminPassword: fakePassword,
			ImageName: "Windows 7 PROFESSIONAL",
		}},
		{name: "install-x64-activate", install: true, p: AnswerParams{
			ProcessorArchitecture: "amd64", ComputerName: "ACCT-2", ProductKey: k, KeyAtWindowsPE: true,
			AdminUser: "labadmin", AdminPassword: fakePassword, ImageIndex: 4, Activate: true,
			FirstLogonCommands: []string{`cmd /c echo provisioned > "%SystemDrive%\legacyvm.txt"`},
		}},
		{name: "install-x86", install: true, p: AnswerParams{
			ProcessorArchitecture: "x86", ComputerName: "OLDAPP", AdminUser: "labadmin", AdminPassword: fakePassword,
			ImageIndex: 1, PartitionLayout: LayoutSingle,
		}},
		{name: "install-x86-kms", install: true, p: AnswerParams{
			ProcessorArchitecture: "x86", ComputerName: "VOL-7", AdminUser: "labadmin", AdminPassword: fakePassword,
			ImageName: "Windows 7 ENTERPRISE", KMSHost: "kms.example.org", Activate: true,
		}},
		{name: "specialize-x64", p: AnswerParams{
			ProcessorArchitecture: "amd64", ComputerName: "CLONE-1", ProductKey: k, AdminUser: "labadmin", AdminPassword: fakePassword,
			TimeZone: "Pacific Standard Time",
		}},
		{name: "specialize-x64-activate", p: AnswerParams{
			ProcessorArchitecture: "amd64", ComputerName: "CLONE-2", ProductKey: k, AdminUser: "labadmin", AdminPassword: fakePassword,
			Activate: true,
		}},
		{name: "specialize-x86", p: AnswerParams{
			ProcessorArchitecture: "x86", ComputerName: "CLONE-3", ProductKey: k, AdminUser: "labadmin", AdminPassword: fakePassword,
			AccountExists: true,
		}},
		{name: "specialize-x86-kms", p: AnswerParams{
			ProcessorArchitecture: "x86", ComputerName: "CLONE-4", AdminUser: "labadmin", AdminPassword: fakePassword,
			KMSHost: "kms.example.org:1688", Activate: true,
		}},
	}
}

func generate(c answerCase) ([]byte, error) {
	if c.install {
		return Autounattend(c.p)
	}
	return SpecializeUnattend(c.p)
}

// placeholders replaces the secrets; it is what golden files store.
func placeholders(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte(fakeKey), []byte(keyHolder))
	return bytes.ReplaceAll(b, []byte(fakePassword), []byte(pwHolder))
}

func TestAnswerFilesGolden(t *testing.T) {
	for _, c := range answerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := generate(c)
			if err != nil {
				t.Fatalf("generate: %v", err)
			}
			got := placeholders(out)
			assertNoSecret(t, "golden content", got)
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
			assertNoSecret(t, "golden file "+path, want)
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the generated answer file (run go test -update and review the diff)\n%s", path, firstDiff(want, got))
			}
		})
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n  golden:    %s\n  generated: %s", i+1, w, g)
		}
	}
	return ""
}

// assertNoSecret fails if b holds the fake key (or any group of it but the
// last, which may be shown) or the fake password.
func assertNoSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	up := bytes.ToUpper(b)
	if bytes.Contains(up, []byte(strings.ReplaceAll(fakeKey, "-", ""))) {
		t.Fatalf("%s contains the product key", what)
	}
	for _, g := range strings.Split(fakeKey, "-")[:4] {
		if bytes.Contains(up, []byte(g)) {
			t.Fatalf("%s contains a group of the product key", what)
		}
	}
	if bytes.Contains(b, []byte(fakePassword)) {
		t.Fatalf("%s contains the password", what)
	}
}

// node is a namespace-resolved element.
type node struct {
	name     xml.Name
	attrs    []xml.Attr
	children []*node
	text     string
	path     string // pass/component/Elem/Elem...
}

func (n *node) attr(space, local string) (string, bool) {
	for _, a := range n.attrs {
		if a.Name.Space == space && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

func (n *node) child(local string) *node {
	for _, c := range n.children {
		if c.name.Local == local {
			return c
		}
	}
	return nil
}

func (n *node) walk(f func(*node)) {
	f(n)
	for _, c := range n.children {
		c.walk(f)
	}
}

// parseAnswer parses strictly and computes each element's path: the pass,
// then the component name, then element names.
func parseAnswer(t *testing.T, b []byte) *node {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	var stack []*node
	var root *node
	for {
		tok, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("answer file is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			n := &node{name: tk.Name, attrs: tk.Attr}
			if len(stack) == 0 {
				root = n
			} else {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
				switch {
				case p.name.Local == "unattend":
					n.path, _ = n.attr("", "pass")
				case p.name.Local == "settings":
					name, _ := n.attr("", "name")
					n.path = p.path + "/" + name
				default:
					n.path = p.path + "/" + n.name.Local
				}
			}
			stack = append(stack, n)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(tk)
			}
		case xml.EndElement:
			n := stack[len(stack)-1]
			n.text = strings.TrimSpace(n.text)
			stack = stack[:len(stack)-1]
		}
	}
	if root == nil {
		t.Fatalf("empty answer file")
	}
	return root
}

// passTable is win7-spec §2.2: which components each pass may hold and
// which settings (top-level elements) legacyvm may emit in each.
var passTable = map[string]map[string][]string{
	"windowsPE": {
		"Microsoft-Windows-International-Core-WinPE": {"SetupUILanguage", "InputLocale", "SystemLocale", "UILanguage", "UserLocale"},
		"Microsoft-Windows-Setup":                    {"DiskConfiguration", "ImageInstall", "UserData", "DynamicUpdate"},
		"Microsoft-Windows-PnpCustomizationsWinPE":   {"DriverPaths"},
	},
	"offlineServicing": {
		"Microsoft-Windows-LUA-Settings": {"EnableLUA"},
	},
	"generalize": {
		"Microsoft-Windows-PnpSysprep":   {"PersistAllDeviceInstalls"},
		"Microsoft-Windows-Security-SPP": {"SkipRearm"},
	},
	"specialize": {
		"Microsoft-Windows-Shell-Setup":     {"ComputerName", "ProductKey", "TimeZone", "RegisteredOwner", "RegisteredOrganization"},
		"Microsoft-Windows-Security-SPP-UX": {"SkipAutoActivation"},
		"Microsoft-Windows-Deployment":      {"RunSynchronous"},
	},
	"oobeSystem": {
		"Microsoft-Windows-International-Core": {"InputLocale", "SystemLocale", "UILanguage", "UserLocale"},
		"Microsoft-Windows-Shell-Setup":        {"OOBE", "UserAccounts", "AutoLogon", "FirstLogonCommands", "TimeZone"},
	},
}

// required lists what every answer file of a kind must contain.
var required = map[bool][]string{
	true: {"windowsPE/Microsoft-Windows-International-Core-WinPE", "windowsPE/Microsoft-Windows-Setup",
		"specialize/Microsoft-Windows-Shell-Setup", "specialize/Microsoft-Windows-Security-SPP-UX",
		"oobeSystem/Microsoft-Windows-International-Core", "oobeSystem/Microsoft-Windows-Shell-Setup"},
	false: {"specialize/Microsoft-Windows-Shell-Setup", "specialize/Microsoft-Windows-Security-SPP-UX",
		"oobeSystem/Microsoft-Windows-International-Core", "oobeSystem/Microsoft-Windows-Shell-Setup"},
}

// listItems are the elements that must carry wcm:action="add".
var listItems = []string{"Disk", "CreatePartition", "ModifyPartition", "MetaData", "LocalAccount", "SynchronousCommand"}

func TestAnswerFilesMatchPassTable(t *testing.T) {
	for _, c := range answerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := generate(c)
			if err != nil {
				t.Fatal(err)
			}
			root := parseAnswer(t, out)
			if root.name.Space != NamespaceUnattend || root.name.Local != "unattend" {
				t.Fatalf("root element is {%s}%s", root.name.Space, root.name.Local)
			}
			if v, _ := root.attr("xmlns", "wcm"); v != NamespaceWCM {
				t.Errorf("root does not declare xmlns:wcm=%q", NamespaceWCM)
			}
			var seen []string
			var passes []string
			for _, s := range root.children {
				if s.name.Local != "settings" {
					t.Errorf("unexpected element %s under unattend", s.name.Local)
					continue
				}
				pass, _ := s.attr("", "pass")
				if slices.Contains(passes, pass) {
					t.Errorf("pass %s appears twice", pass)
				}
				passes = append(passes, pass)
				comps, ok := passTable[pass]
				if !ok {
					t.Errorf("pass %q is not in the table", pass)
					continue
				}
				for _, comp := range s.children {
					name, _ := comp.attr("", "name")
					allowed, ok := comps[name]
					if comp.name.Local != "component" || !ok {
						t.Errorf("pass %s holds %s %q, which the table does not pair with it", pass, comp.name.Local, name)
						continue
					}
					seen = append(seen, pass+"/"+name)
					wantAttrs := map[string]string{
						"processorArchitecture": c.p.ProcessorArchitecture, "publicKeyToken": "31bf3856ad364e35",
						"language": "neutral", "versionScope": "nonSxS",
					}
					for k, v := range wantAttrs {
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
			for _, r := range required[c.install] {
				if !slices.Contains(seen, r) {
					t.Errorf("missing component %s", r)
				}
			}
			if !c.install && slices.Contains(passes, "windowsPE") {
				t.Errorf("a specialize answer file has a windowsPE pass")
			}
			// Every element is in the unattend namespace; list items and
			// only they carry wcm:action="add".
			root.walk(func(n *node) {
				if n.name.Space != NamespaceUnattend {
					t.Errorf("element %s is in namespace %q", n.name.Local, n.name.Space)
				}
				act, has := n.attr(NamespaceWCM, "action")
				isItem := slices.Contains(listItems, n.name.Local)
				if isItem && (!has || act != "add") {
					t.Errorf("%s lacks wcm:action=\"add\"", n.path)
				}
				if !isItem && has {
					t.Errorf("%s has wcm:action but is not a list item", n.path)
				}
			})
		})
	}
}

// values collects the text of every leaf by path.
func values(root *node) map[string][]string {
	m := map[string][]string{}
	root.walk(func(n *node) {
		if len(n.children) == 0 && n.path != "" {
			m[n.path] = append(m[n.path], n.text)
		}
	})
	return m
}

func TestAnswerFilesSecretsOnlyWhereDocumented(t *testing.T) {
	const (
		peKey    = "windowsPE/Microsoft-Windows-Setup/UserData/ProductKey/Key"
		peShowUI = "windowsPE/Microsoft-Windows-Setup/UserData/ProductKey/WillShowUI"
		specKey  = "specialize/Microsoft-Windows-Shell-Setup/ProductKey"
		adminPW  = "oobeSystem/Microsoft-Windows-Shell-Setup/UserAccounts/AdministratorPassword/Value"
		localPW  = "oobeSystem/Microsoft-Windows-Shell-Setup/UserAccounts/LocalAccounts/LocalAccount/Password/Value"
		autoPW   = "oobeSystem/Microsoft-Windows-Shell-Setup/AutoLogon/Password/Value"
	)
	for _, c := range answerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := generate(c)
			if err != nil {
				t.Fatal(err)
			}
			v := values(parseAnswer(t, out))
			var wantKey []string
			if !c.p.ProductKey.IsZero() {
				wantKey = append(wantKey, specKey)
				if c.install && c.p.KeyAtWindowsPE {
					wantKey = append(wantKey, peKey)
				}
			}
			wantPW := []string{adminPW, autoPW}
			if !c.p.AccountExists {
				wantPW = append(wantPW, localPW)
			}
			var gotKey, gotPW []string
			for path, texts := range v {
				for _, s := range texts {
					if strings.Contains(strings.ToUpper(s), "HJKMP") {
						if s != fakeKey {
							t.Errorf("%s holds part of the key", path)
						}
						gotKey = append(gotKey, path)
					}
					if strings.Contains(s, fakePassword) {
						if s != fakePassword {
							t.Errorf("%s holds the password inside other text", path)
						}
						gotPW = append(gotPW, path)
					}
				}
			}
			slices.Sort(gotKey)
			slices.Sort(wantKey)
			if !slices.Equal(gotKey, wantKey) {
				t.Errorf("key found at %q, want exactly %q", gotKey, wantKey)
			}
			slices.Sort(gotPW)
			slices.Sort(wantPW)
			if !slices.Equal(gotPW, wantPW) {
				t.Errorf("password found at %q, want exactly %q", gotPW, wantPW)
			}
			// Raw bytes agree with the parsed view (no key in attributes,
			// comments or escaped forms).
			if n := bytes.Count(out, []byte(fakeKey)); n != len(wantKey) {
				t.Errorf("key occurs %d times in the bytes, want %d", n, len(wantKey))
			}
			for _, g := range strings.Split(fakeKey, "-")[:4] {
				if n := bytes.Count(out, []byte(g)); n != len(wantKey) {
					t.Errorf("a key group occurs %d times, want %d", n, len(wantKey))
				}
			}
			if c.install {
				want := "Never"
				if c.p.KeyAtWindowsPE && !c.p.ProductKey.IsZero() {
					want = "OnError"
				}
				if got := v[peShowUI]; !slices.Equal(got, []string{want}) {
					t.Errorf("windowsPE ProductKey/WillShowUI = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestAnswerFilesSettings(t *testing.T) {
	const shellOOBE = "oobeSystem/Microsoft-Windows-Shell-Setup/"
	for _, c := range answerCases(t) {
		t.Run(c.name, func(t *testing.T) {
			out, err := generate(c)
			if err != nil {
				t.Fatal(err)
			}
			root := parseAnswer(t, out)
			v := values(root)
			one := func(path, want string) {
				t.Helper()
				if got := v[path]; !slices.Equal(got, []string{want}) {
					t.Errorf("%s = %q, want %q", path, got, want)
				}
			}
			p := c.p.withDefaults()
			one("specialize/Microsoft-Windows-Shell-Setup/ComputerName", p.ComputerName)
			one("specialize/Microsoft-Windows-Shell-Setup/TimeZone", p.TimeZone)
			one("specialize/Microsoft-Windows-Security-SPP-UX/SkipAutoActivation", "true")
			one(shellOOBE+"TimeZone", p.TimeZone)
			one("oobeSystem/Microsoft-Windows-International-Core/UILanguage", p.UILanguage)
			one("oobeSystem/Microsoft-Windows-International-Core/InputLocale", p.InputLocale)
			one(shellOOBE+"AutoLogon/Username", p.AdminUser)
			one(shellOOBE+"AutoLogon/LogonCount", "1")
			if c.install {
				one("windowsPE/Microsoft-Windows-International-Core-WinPE/SetupUILanguage/UILanguage", p.UILanguage)
				one("windowsPE/Microsoft-Windows-Setup/UserData/AcceptEula", "true")
				meta := "windowsPE/Microsoft-Windows-Setup/ImageInstall/OSImage/InstallFrom/MetaData/"
				if p.ImageIndex > 0 {
					one(meta+"Key", "/IMAGE/INDEX")
					one(meta+"Value", fmt.Sprint(p.ImageIndex))
				} else {
					one(meta+"Key", "/IMAGE/NAME")
					one(meta+"Value", p.ImageName)
				}
				part := "2"
				if p.PartitionLayout == LayoutSingle {
					part = "1"
				}
				one("windowsPE/Microsoft-Windows-Setup/ImageInstall/OSImage/InstallTo/PartitionID", part)
				active := v["windowsPE/Microsoft-Windows-Setup/DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Active"]
				if !slices.Equal(active, []string{"true"}) {
					t.Errorf("want exactly one active partition, got %q", active)
				}
			}
			// First-logon commands: ordered 1..n; activation as asked;
			// cleanup then power-off last.
			cmds := v[shellOOBE+"FirstLogonCommands/SynchronousCommand/CommandLine"]
			orders := v[shellOOBE+"FirstLogonCommands/SynchronousCommand/Order"]
			for i, o := range orders {
				if o != fmt.Sprint(i+1) {
					t.Errorf("command %d has Order %s", i+1, o)
				}
			}
			if len(cmds) < 2 || cmds[len(cmds)-1] != PowerOffCommand || cmds[len(cmds)-2] != CleanupCommand {
				t.Fatalf("commands do not end with cleanup and power-off: %q", cmds)
			}
			if !strings.Contains(CleanupCommand, `%WINDIR%\Panther\unattend.xml`) || !strings.Contains(CleanupCommand, "Autounattend.xml") {
				t.Errorf("cleanup does not delete the cached answer files")
			}
			idx := func(suffix string) int {
				return slices.IndexFunc(cmds, func(s string) bool { return strings.HasSuffix(s, suffix) })
			}
			ato, skms := idx("slmgr.vbs /ato"), slices.IndexFunc(cmds, func(s string) bool { return strings.Contains(s, "/skms ") })
			if c.p.Activate != (ato >= 0) {
				t.Errorf("activate=%v but /ato command index %d", c.p.Activate, ato)
			}
			if ato >= 0 && cmds[ato] != `cscript //B //Nologo %SystemRoot%\System32\slmgr.vbs /ato` {
				t.Errorf("activation command is %q", cmds[ato])
			}
			if (c.p.KMSHost != "") != (skms >= 0) || (skms >= 0 && ato >= 0 && skms > ato) {
				t.Errorf("KMS host %q: /skms at %d, /ato at %d", c.p.KMSHost, skms, ato)
			}
			if skms >= 0 && !strings.HasSuffix(cmds[skms], "/skms "+c.p.KMSHost) {
				t.Errorf("/skms command is %q", cmds[skms])
			}
			for i, uc := range c.p.FirstLogonCommands {
				j := slices.Index(cmds, uc)
				if j < 0 || j >= len(cmds)-2 || (ato >= 0 && j < ato) {
					t.Errorf("profile command %d at %d of %d", i+1, j, len(cmds))
				}
			}
			if c.p.AccountExists {
				if root := v[shellOOBE+"UserAccounts/LocalAccounts/LocalAccount/Name"]; root != nil {
					t.Errorf("AccountExists still creates the account")
				}
			} else {
				one(shellOOBE+"UserAccounts/LocalAccounts/LocalAccount/Name", p.AdminUser)
				one(shellOOBE+"UserAccounts/LocalAccounts/LocalAccount/Group", "Administrators")
			}
		})
	}
}

func TestAnswerFilesXMLLint(t *testing.T) {
	xmllint, err := exec.LookPath("xmllint")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint not installed (Debian package libxml2-utils); CI=true requires it (make deps installs it)")
		}
		t.Skip("xmllint not installed (Debian package libxml2-utils); the Go parser checks remain")
	}
	for _, c := range answerCases(t) {
		out, err := generate(c)
		if err != nil {
			t.Fatal(err)
		}
		// xmllint sees the placeholder form: its messages must not be able
		// to quote a secret.
		cmd := exec.Command(xmllint, "--noout", "--nonet", "-")
		cmd.Stdin = bytes.NewReader(placeholders(out))
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: xmllint: %v\n%s", c.name, err, msg)
		}
	}
}

func TestValidateComputerName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"ACCT-1", true}, {"a", true}, {"ABCDEFGHIJKLMNO", true}, {"win7-lab-01", true}, {"1a", true},
		{"", false}, {"ABCDEFGHIJKLMNOP", false}, {"12345", false}, {"-lab", false}, {"lab-", false},
		{"lab_1", false}, {"lab.1", false}, {"lab 1", false}, {"läb", false}, {"*", false},
	}
	for _, tt := range tests {
		err := ValidateComputerName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateComputerName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func TestAnswerParamsValidation(t *testing.T) {
	k := mustKey(t)
	base := AnswerParams{
		ProcessorArchitecture: "amd64", ComputerName: "ACCT-1", ProductKey: k, KeyAtWindowsPE: true,
		AdminUser: "labadmin", AdminPassword: fakePassword, ImageName: "Windows 7 PROFESSIONAL",
	}
	tests := []struct {
		name    string
		install bool
		mod     func(*AnswerParams)
		field   string
	}{
		{"no architecture", true, func(p *AnswerParams) { p.ProcessorArchitecture = "" }, "processor architecture"},
		{"wrong architecture", true, func(p *AnswerParams) { p.ProcessorArchitecture = "x86_64" }, "processor architecture"},
		{"long computer name", true, func(p *AnswerParams) { p.ComputerName = "ABCDEFGHIJKLMNOP" }, "computer name"},
		{"digits computer name", false, func(p *AnswerParams) { p.ComputerName = "2024" }, "computer name"},
		{"hyphen computer name", false, func(p *AnswerParams) { p.ComputerName = "lab-" }, "computer name"},
		{"time zone", false, func(p *AnswerParams) { p.TimeZone = "Europe/Berlin" }, "time zone"},
		{"ui language", true, func(p *AnswerParams) { p.UILanguage = "english" }, "UI language"},
		{"input locale", true, func(p *AnswerParams) { p.InputLocale = "0409-00000409" }, "input locale"},
		{"no admin", false, func(p *AnswerParams) { p.AdminUser = "" }, "admin user"},
		{"builtin admin", false, func(p *AnswerParams) { p.AdminUser = "administrator" }, "admin user"},
		{"admin with @", false, func(p *AnswerParams) { p.AdminUser = "me@lab" }, "admin user"},
		{"password control char", false, func(p *AnswerParams) { p.AdminPassword = fakePassword + "\x01" }, "admin password"},
		{"password too long", false, func(p *AnswerParams) { p.AdminPassword = strings.Repeat(fakePassword, 8) }, "admin password"},
		{"no image", true, func(p *AnswerParams) { p.ImageName = "" }, "image"},
		{"two images", true, func(p *AnswerParams) { p.ImageIndex = 2 }, "image"},
		{"negative index", true, func(p *AnswerParams) { p.ImageName, p.ImageIndex = "", -1 }, "image index"},
		{"layout", true, func(p *AnswerParams) { p.PartitionLayout = "gpt" }, "partition layout"},
		{"kms host with space", false, func(p *AnswerParams) { p.KMSHost = "kms host" }, "KMS host"},
		{"kms host shell", false, func(p *AnswerParams) { p.KMSHost = "kms&calc" }, "KMS host"},
		{"kms port", false, func(p *AnswerParams) { p.KMSHost = "kms.example.org:99999" }, "KMS host"},
		{"kms bad ipv6", false, func(p *AnswerParams) { p.KMSHost = "[fe80::1" }, "KMS host"},
		{"empty command", false, func(p *AnswerParams) { p.FirstLogonCommands = []string{" "} }, "first-logon command 1"},
		{"command newline", false, func(p *AnswerParams) { p.FirstLogonCommands = []string{"echo " + fakePassword + "\necho"} }, "first-logon command 1"},
		{"owner control", false, func(p *AnswerParams) { p.Owner = "a\x00b" }, "owner"},
		{"existing account at install", true, func(p *AnswerParams) { p.AccountExists = true }, "admin user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base
			tt.mod(&p)
			var err error
			if tt.install {
				_, err = Autounattend(p)
			} else {
				_, err = SpecializeUnattend(p)
			}
			if err == nil {
				t.Fatalf("accepted")
			}
			if !errors.Is(err, ErrInvalidParams) {
				t.Errorf("error does not wrap ErrInvalidParams: %v", err)
			}
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Field != tt.field {
				t.Errorf("error %q, want field %q", err, tt.field)
			}
			assertNoSecret(t, "error", []byte(err.Error()))
		})
	}
	// Valid variants.
	for _, h := range []string{"kms.example.org", "kms.example.org:1688", "10.0.0.5", "10.0.0.5:1688", "[fd00::5]:1688", "[fd00::5]", "KMS01"} {
		p := base
		p.KMSHost = h
		if _, err := Autounattend(p); err != nil {
			t.Errorf("KMS host %q refused: %v", h, err)
		}
	}
	// Several problems are all reported.
	p := base
	p.ComputerName, p.TimeZone, p.AdminUser = "", "\x00", ""
	_, err := Autounattend(p)
	for _, f := range []string{"computer name", "time zone", "admin user"} {
		if err == nil || !strings.Contains(err.Error(), f+":") {
			t.Errorf("joined error %v does not report %s", err, f)
		}
	}
}

func TestAnswerParamsPrintHidesSecrets(t *testing.T) {
	p := AnswerParams{ComputerName: "ACCT-1", ProductKey: mustKey(t), AdminPassword: fakePassword, AdminUser: "labadmin"}
	for _, s := range []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s", p, p, p, p), fmt.Sprintf("%v", &p), fmt.Sprintf("%v", []AnswerParams{p})} {
		assertNoSecret(t, "printed params", []byte(s))
		if !strings.Contains(s, "ACCT-1") || !strings.Contains(s, "6789B") {
			t.Errorf("printed params lost the non-secret fields: %s", s)
		}
	}
}

func TestImageName(t *testing.T) {
	for _, e := range license.Editions {
		if n := ImageName(e); !strings.HasPrefix(n, "Windows 7 ") {
			t.Errorf("ImageName(%s) = %q", e, n)
		}
	}
	if ImageName("server") != "" {
		t.Errorf("unknown edition has an image name")
	}
}

// FuzzAnswerText checks that any text the parameters accept survives XML
// encoding exactly and never breaks the document.
func FuzzAnswerText(f *testing.F) {
	f.Add("Lab Owner", "Example & Sons <Ltd>", fakePassword, `cmd /c echo "a" > b`)
	f.Add("", "", "", "x")
	f.Add("]]>", "&amp;", "p\"w'<>&", "%WINDIR%\\x")
	f.Add("ünïcödé", "\u2028", "\U0001F600", "\t")
	f.Fuzz(func(t *testing.T, owner, org, pw, cmd string) {
		p := AnswerParams{
			ProcessorArchitecture: "amd64", ComputerName: "FUZZ-1", AdminUser: "labadmin",
			Owner: owner, Organization: org, AdminPassword: pw, FirstLogonCommands: []string{cmd}, ImageIndex: 1,
		}
		out, err := Autounattend(p)
		if err != nil {
			if !errors.Is(err, ErrInvalidParams) {
				t.Fatalf("unexpected error type: %v", err)
			}
			if pw != "" && len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error contains the password")
			}
			return
		}
		v := values(parseAnswer(t, out))
		check := func(path, want string) {
			t.Helper()
			got := v[path]
			// The parser trims surrounding space when collecting text; XML
			// keeps it, so compare trimmed.
			if len(got) == 0 || got[0] != strings.TrimSpace(want) {
				t.Fatalf("%s did not round-trip", path)
			}
		}
		if strings.TrimSpace(owner) != "" {
			check("windowsPE/Microsoft-Windows-Setup/UserData/FullName", owner)
		}
		if strings.TrimSpace(pw) != "" {
			check("oobeSystem/Microsoft-Windows-Shell-Setup/AutoLogon/Password/Value", pw)
		}
		cmds := v["oobeSystem/Microsoft-Windows-Shell-Setup/FirstLogonCommands/SynchronousCommand/CommandLine"]
		if !slices.Contains(cmds, strings.TrimSpace(cmd)) || cmds[len(cmds)-1] != PowerOffCommand {
			t.Fatalf("commands did not round-trip or power-off is not last")
		}
	})
}
