package winguest

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/legacyvm/legacyvm/internal/license"
)

// File names Windows Setup looks for at the root of removable media
// (win7-spec §2.1, §4.3).
const (
	// AutounattendName is the answer file for installation from media.
	AutounattendName = "Autounattend.xml"
	// UnattendName is the answer file for the specialize and oobeSystem
	// passes of a sysprepped golden image.
	UnattendName = "Unattend.xml"
)

// Partition layouts for installation from media (win7-spec §2.5).
const (
	// LayoutSystemReserved is a 100 MB active "System Reserved" partition
	// followed by the Windows partition (C:), like a manual install.
	LayoutSystemReserved = "system-reserved"
	// LayoutSingle is one active NTFS partition (C:) filling the disk.
	LayoutSingle = "single"
)

// Defaults applied to empty AnswerParams fields.
const (
	DefaultTimeZone    = "UTC"
	DefaultLanguage    = "en-US"
	DefaultInputLocale = "0409:00000409"
)

// slmgr is how activation is triggered: Microsoft's own script, run
// quietly (win7-spec §3.4).
const slmgr = `cscript //B //Nologo %SystemRoot%\System32\slmgr.vbs`

// PowerOffCommand is the last first-logon command of every answer file:
// legacyvm waits for the guest to power off to know that setup finished.
const PowerOffCommand = "shutdown /s /t 0"

// CleanupCommand deletes the answer files Setup cached on the guest's disk
// (they hold the product key and passwords; win7-spec §2.12, pitfall P20).
const CleanupCommand = `cmd /c del /f /q "%WINDIR%\Panther\unattend.xml" "%WINDIR%\Panther\Autounattend.xml" ` +
	`"%WINDIR%\Panther\Unattend\unattend.xml" "%WINDIR%\Panther\Unattend\Autounattend.xml" 2>nul`

// AnswerParams is everything an answer file says. ProductKey and
// AdminPassword are secrets: they are written only into the answer file,
// and printing AnswerParams with fmt shows neither.
type AnswerParams struct {
	// ProcessorArchitecture of the media: "amd64" or "x86" (Preset).
	// Required: Setup ignores components of another architecture.
	ProcessorArchitecture string
	// ComputerName is at most 15 letters, digits and hyphens, not all
	// digits, no hyphen at either end (ValidateComputerName).
	ComputerName string
	// ProductKey is written to specialize Shell-Setup/ProductKey. The zero
	// Key writes no key at all (volume media with a preinstalled KMS
	// client key, or evaluation/grace-period installs).
	ProductKey license.Key
	// KeyAtWindowsPE also writes the key to windowsPE
	// Setup/UserData/ProductKey/Key, for media that need a key to pick or
	// unlock the image. Otherwise that element holds only
	// WillShowUI=Never.
	KeyAtWindowsPE bool
	// TimeZone is a Windows time-zone ID such as "W. Europe Standard Time";
	// default "UTC".
	TimeZone string
	// UILanguage must be a language on the media; SystemLocale and
	// UserLocale are locale names; InputLocale is "LCID:KLID" (or a
	// locale name). Defaults en-US and 0409:00000409.
	UILanguage, InputLocale, SystemLocale, UserLocale string
	// Owner and Organization are the registered owner and organisation
	// (optional).
	Owner, Organization string
	// AdminUser is the local administrator account that setup creates and
	// logs on once to run the first-logon commands. Required.
	AdminUser string
	// AdminPassword is AdminUser's password (also set for the built-in
	// Administrator, which stays disabled). Secret; may be empty.
	AdminPassword string
	// AccountExists says the golden image already has AdminUser with
	// AdminPassword: SpecializeUnattend then logs on to it instead of
	// creating it.
	AccountExists bool
	// ImageIndex (1-based) or ImageName selects the image in install.wim;
	// Autounattend needs exactly one of them.
	ImageIndex int
	ImageName  string
	// Activate runs slmgr /ato at first logon (activation through
	// Microsoft's own mechanism; nothing else is ever done about it).
	Activate bool
	// KMSHost ("host" or "host:port") is set with slmgr /skms at first
	// logon, before activation.
	KMSHost string
	// PartitionLayout is LayoutSystemReserved (default) or LayoutSingle.
	PartitionLayout string
	// DiskID is Windows' index of the target disk: 0 when it is the only
	// disk (CD-ROMs do not count).
	DiskID int
	// FirstLogonCommands run at the first logon, after activation and
	// before the answer-file cleanup and the final power-off.
	FirstLogonCommands []string
}

// Format prints p with the product key redacted and the password hidden,
// for every verb.
func (p AnswerParams) Format(f fmt.State, verb rune) {
	type plain AnswerParams // no methods: no recursion
	q := plain(p)
	if q.AdminPassword != "" {
		q.AdminPassword = "(hidden)"
	}
	fmt.Fprintf(f, "%+v", q)
}

// ErrInvalidParams is wrapped by every validation error of answer-file
// parameters.
var ErrInvalidParams = errors.New("invalid answer-file parameters")

// ParamError is one invalid parameter. Its message names the field and the
// rule, and never contains the product key or a password.
type ParamError struct {
	Field   string
	Problem string
}

func (e *ParamError) Error() string { return e.Field + ": " + e.Problem }

// Unwrap makes errors.Is(err, ErrInvalidParams) true.
func (e *ParamError) Unwrap() error { return ErrInvalidParams }

// Autounattend returns Autounattend.xml for installation from media:
// windowsPE (locale, BIOS/MBR disk layout, image selection, EULA, key
// page), specialize (computer name, product key, time zone,
// SkipAutoActivation) and oobeSystem (locale, OOBE, accounts, one
// automatic logon, first-logon commands ending with cleanup and power-off).
// Invalid parameters give an error joining one *ParamError per problem.
func Autounattend(p AnswerParams) ([]byte, error) {
	p = p.withDefaults()
	if err := p.validate(true); err != nil {
		return nil, err
	}
	doc := newDoc()
	doc.Settings = append(doc.Settings, p.windowsPE(), p.specialize(), p.oobeSystem(false))
	return marshalDoc(doc)
}

// SpecializeUnattend returns Unattend.xml for a clone of a sysprepped
// golden image: specialize and oobeSystem only, with the same settings as
// Autounattend. It is delivered on a CD or written to the clone's
// Windows\Panther\unattend.xml (win7-spec §4.3).
func SpecializeUnattend(p AnswerParams) ([]byte, error) {
	p = p.withDefaults()
	if err := p.validate(false); err != nil {
		return nil, err
	}
	doc := newDoc()
	doc.Settings = append(doc.Settings, p.specialize(), p.oobeSystem(p.AccountExists))
	return marshalDoc(doc)
}

func newDoc() *unattendDoc { return &unattendDoc{WCM: NamespaceWCM} }

func marshalDoc(doc *unattendDoc) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		// Only a bug in our types can get here.
		return nil, fmt.Errorf("encode answer file: %w", err)
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

func (p AnswerParams) withDefaults() AnswerParams {
	def := func(s *string, d string) {
		if strings.TrimSpace(*s) == "" {
			*s = d
		}
	}
	def(&p.TimeZone, DefaultTimeZone)
	def(&p.UILanguage, DefaultLanguage)
	def(&p.SystemLocale, DefaultLanguage)
	def(&p.UserLocale, DefaultLanguage)
	def(&p.InputLocale, DefaultInputLocale)
	def(&p.PartitionLayout, LayoutSystemReserved)
	return p
}

func (p AnswerParams) windowsPE() settingsXML {
	arch := p.ProcessorArchitecture
	intl := intlCoreWinPEXML{componentAttrs: newComponent(compIntlWinPE, arch),
		InputLocale: p.InputLocale, SystemLocale: p.SystemLocale, UILanguage: p.UILanguage, UserLocale: p.UserLocale}
	intl.SetupUILanguage.UILanguage = p.UILanguage

	setup := setupXML{componentAttrs: newComponent(compSetup, arch)}
	setup.DynamicUpdate = dynamicUpdateXML{Enable: false, WillShowUI: "Never"}
	disk := diskXML{Action: actionAdd, DiskID: p.DiskID, WillWipeDisk: true}
	windowsPartition := 1
	switch p.PartitionLayout {
	case LayoutSingle:
		disk.CreatePartitions = []createPartitionXML{{Action: actionAdd, Order: 1, Type: "Primary", Extend: true}}
		disk.ModifyPartitions = []modifyPartitionXML{{Action: actionAdd, Order: 1, PartitionID: 1, Active: true, Format: "NTFS", Label: "Windows", Letter: "C"}}
	default: // LayoutSystemReserved
		disk.CreatePartitions = []createPartitionXML{
			{Action: actionAdd, Order: 1, Type: "Primary", SizeMB: 100},
			{Action: actionAdd, Order: 2, Type: "Primary", Extend: true},
		}
		disk.ModifyPartitions = []modifyPartitionXML{
			{Action: actionAdd, Order: 1, PartitionID: 1, Active: true, Format: "NTFS", Label: "System Reserved"},
			{Action: actionAdd, Order: 2, PartitionID: 2, Format: "NTFS", Label: "Windows", Letter: "C"},
		}
		windowsPartition = 2
	}
	setup.DiskConfiguration = diskConfigurationXML{WillShowUI: "OnError", Disks: []diskXML{disk}}

	img := &setup.ImageInstall.OSImage
	if p.ImageIndex > 0 {
		img.InstallFrom.MetaData = []metaDataXML{{Action: actionAdd, Key: "/IMAGE/INDEX", Value: strconv.Itoa(p.ImageIndex)}}
	} else {
		img.InstallFrom.MetaData = []metaDataXML{{Action: actionAdd, Key: "/IMAGE/NAME", Value: p.ImageName}}
	}
	img.InstallTo.DiskID = p.DiskID
	img.InstallTo.PartitionID = windowsPartition
	img.InstallToAvailablePartition = false
	img.WillShowUI = "OnError"

	setup.UserData.AcceptEula = true
	setup.UserData.FullName = p.Owner
	setup.UserData.Organization = p.Organization
	if p.KeyAtWindowsPE && !p.ProductKey.IsZero() {
		setup.UserData.ProductKey.Key = p.ProductKey.Reveal()
		setup.UserData.ProductKey.WillShowUI = "OnError"
	} else {
		setup.UserData.ProductKey.WillShowUI = "Never"
	}
	return settingsXML{Pass: passWindowsPE, Components: []any{intl, setup}}
}

func (p AnswerParams) specialize() settingsXML {
	arch := p.ProcessorArchitecture
	shell := shellSetupSpecializeXML{componentAttrs: newComponent(compShellSetup, arch),
		ComputerName: p.ComputerName, RegisteredOrganization: p.Organization, RegisteredOwner: p.Owner, TimeZone: p.TimeZone}
	if !p.ProductKey.IsZero() {
		shell.ProductKey = p.ProductKey.Reveal()
	}
	spp := sppUXXML{componentAttrs: newComponent(compSPPUX, arch), SkipAutoActivation: true}
	return settingsXML{Pass: passSpecialize, Components: []any{shell, spp}}
}

func (p AnswerParams) oobeSystem(accountExists bool) settingsXML {
	arch := p.ProcessorArchitecture
	intl := intlCoreXML{componentAttrs: newComponent(compIntl, arch),
		InputLocale: p.InputLocale, SystemLocale: p.SystemLocale, UILanguage: p.UILanguage, UserLocale: p.UserLocale}

	shell := shellSetupOOBEXML{componentAttrs: newComponent(compShellSetup, arch), TimeZone: p.TimeZone}
	o := &shell.OOBE
	o.HideEULAPage, o.HideWirelessSetupInOOBE = true, true
	o.NetworkLocation = "Work"
	o.ProtectYourPC = 3 // no automatic updates: the lab network decides
	o.SkipMachineOOBE, o.SkipUserOOBE = true, true

	pw := passwordXML{Value: p.AdminPassword, PlainText: true}
	if p.AdminPassword != "" {
		shell.UserAccounts.AdministratorPassword = &passwordXML{Value: p.AdminPassword, PlainText: true}
	}
	if !accountExists {
		shell.UserAccounts.LocalAccounts = []localAccountXML{{Action: actionAdd, Name: p.AdminUser, Group: "Administrators", Password: pw}}
	}
	shell.AutoLogon.Username = p.AdminUser
	shell.AutoLogon.Enabled = true
	shell.AutoLogon.LogonCount = 1
	shell.AutoLogon.Password = pw

	for i, c := range p.firstLogonCommands() {
		shell.FirstLogonCommands = append(shell.FirstLogonCommands, synchronousCommandXML{
			Action: actionAdd, Order: i + 1, Description: c.description, CommandLine: c.commandLine,
		})
	}
	return settingsXML{Pass: passOOBESystem, Components: []any{intl, shell}}
}

type command struct{ description, commandLine string }

// firstLogonCommands: KMS host, activation, key removal from the registry,
// the user's commands, answer-file cleanup, power-off (always last).
func (p AnswerParams) firstLogonCommands() []command {
	var cs []command
	if p.KMSHost != "" {
		cs = append(cs, command{"Set the KMS host", slmgr + " /skms " + p.KMSHost})
	}
	if p.Activate {
		cs = append(cs, command{"Activate Windows", slmgr + " /ato"})
	}
	if !p.ProductKey.IsZero() {
		cs = append(cs, command{"Remove the product key from the registry", slmgr + " /cpky"})
	}
	for i, c := range p.FirstLogonCommands {
		cs = append(cs, command{"Profile command " + strconv.Itoa(i+1), c})
	}
	cs = append(cs,
		command{"Delete cached answer files", CleanupCommand},
		command{"Power off: legacyvm waits for this", PowerOffCommand},
	)
	return cs
}

var (
	computerNameRE = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	allDigitsRE    = regexp.MustCompile(`^[0-9]+$`)
	localeRE       = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)
	inputLocaleRE  = regexp.MustCompile(`^([0-9A-Fa-f]{4}:([0-9A-Fa-f]{8}|\{[0-9A-Fa-f-]{36}\}\{[0-9A-Fa-f-]{36}\})|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3})$`)
	timeZoneRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 .+()'-]{0,63}$`)
	hostLabelRE    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// ValidateComputerName checks a Windows computer name: 1 to 15 characters,
// letters, digits and hyphens, not all digits, no hyphen at either end.
func ValidateComputerName(name string) error {
	switch {
	case name == "":
		return errors.New("is empty")
	case utf8.RuneCountInString(name) > 15:
		return fmt.Errorf("%q has %d characters, at most 15 are allowed (NetBIOS limit)", name, utf8.RuneCountInString(name))
	case !computerNameRE.MatchString(name):
		return fmt.Errorf("%q may contain only letters, digits and hyphens", name)
	case allDigitsRE.MatchString(name):
		return fmt.Errorf("%q is all digits; include a letter", name)
	case strings.HasPrefix(name, "-") || strings.HasSuffix(name, "-"):
		return fmt.Errorf("%q must not begin or end with a hyphen", name)
	}
	return nil
}

// validate checks p (defaults applied) and joins every problem.
func (p AnswerParams) validate(install bool) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ParamError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	switch p.ProcessorArchitecture {
	case "amd64", "x86":
	case "":
		bad("processor architecture", `is required ("amd64" for x64 media, "x86" for 32-bit media)`)
	default:
		bad("processor architecture", `%q is neither "amd64" nor "x86"`, p.ProcessorArchitecture)
	}
	if err := ValidateComputerName(p.ComputerName); err != nil {
		bad("computer name", "%v", err)
	}
	if !timeZoneRE.MatchString(p.TimeZone) {
		bad("time zone", "%q is not a Windows time-zone ID (for example \"UTC\" or \"W. Europe Standard Time\")", p.TimeZone)
	}
	for _, l := range []struct{ field, v string }{{"UI language", p.UILanguage}, {"system locale", p.SystemLocale}, {"user locale", p.UserLocale}} {
		if !localeRE.MatchString(l.v) {
			bad(l.field, "%q is not a locale name such as \"en-US\"", l.v)
		}
	}
	items := strings.Split(p.InputLocale, ";")
	if len(items) > 5 {
		bad("input locale", "lists %d keyboard layouts, at most 5 are allowed", len(items))
	}
	for _, it := range items {
		if !inputLocaleRE.MatchString(it) {
			bad("input locale", "%q is not \"LCID:KLID\" (for example \"0409:00000409\") or a locale name", it)
			break
		}
	}
	checkText := func(field, v string, max int) {
		if utf8.RuneCountInString(v) > max {
			bad(field, "is longer than %d characters", max)
		}
		if !printable(v) {
			bad(field, "contains control characters or invalid UTF-8")
		}
	}
	checkText("owner", p.Owner, 256)
	checkText("organization", p.Organization, 256)
	if err := validateUserName(p.AdminUser); err != nil {
		bad("admin user", "%v", err)
	}
	// The password is never quoted.
	if utf8.RuneCountInString(p.AdminPassword) > 127 {
		bad("admin password", "is longer than 127 characters")
	}
	if !printable(p.AdminPassword) {
		bad("admin password", "contains control characters or invalid UTF-8")
	}
	if p.AccountExists && p.AdminUser != "" && install {
		bad("admin user", "an existing account is possible only for golden images (SpecializeUnattend)")
	}
	if p.KMSHost != "" {
		if err := validateKMSHost(p.KMSHost); err != nil {
			bad("KMS host", "%v", err)
		}
	}
	switch p.PartitionLayout {
	case LayoutSystemReserved, LayoutSingle:
	default:
		bad("partition layout", "%q is neither %q nor %q", p.PartitionLayout, LayoutSystemReserved, LayoutSingle)
	}
	if p.DiskID < 0 {
		bad("disk ID", "%d is negative", p.DiskID)
	}
	if install {
		switch {
		case p.ImageIndex < 0:
			bad("image index", "%d is negative", p.ImageIndex)
		case p.ImageIndex > 0 && p.ImageName != "":
			bad("image", "give an image index or an image name, not both")
		case p.ImageIndex == 0 && strings.TrimSpace(p.ImageName) == "":
			bad("image", "select the image to install with an image index or an image name (for example \"Windows 7 PROFESSIONAL\")")
		}
		checkText("image name", p.ImageName, 256)
	}
	for i, c := range p.FirstLogonCommands {
		field := "first-logon command " + strconv.Itoa(i+1)
		if strings.TrimSpace(c) == "" {
			bad(field, "is empty")
			continue
		}
		// Commands are not quoted: they may carry things the user does
		// not want in logs.
		checkText(field, c, 1024)
	}
	if len(p.FirstLogonCommands) > 400 {
		bad("first-logon commands", "there are %d, at most 400 are supported", len(p.FirstLogonCommands))
	}
	return errors.Join(errs...)
}

// printable reports whether s is valid UTF-8 without control characters
// and holds only characters XML 1.0 can carry (no U+FFFE, U+FFFF).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// validateUserName checks a local account name: 1 to 20 characters, none
// of " / \ [ ] : ; | = , + * ? < > @, not only dots and spaces, and not a
// built-in account.
func validateUserName(name string) error {
	switch {
	case name == "":
		return errors.New("is required: setup logs on to it once to run the first-logon commands")
	case utf8.RuneCountInString(name) > 20:
		return fmt.Errorf("%q has more than 20 characters", name)
	case strings.ContainsAny(name, `"/\[]:;|=,+*?<>@`) || !printable(name):
		return fmt.Errorf("%q contains a character Windows does not allow in user names", name)
	case strings.Trim(name, ". ") == "":
		return fmt.Errorf("%q consists only of dots and spaces", name)
	case strings.EqualFold(name, "Administrator") || strings.EqualFold(name, "Guest"):
		return fmt.Errorf("%q is a built-in account; choose another name", name)
	}
	return nil
}

// validateKMSHost checks "host", "host:port", "ipv4[:port]" or
// "[ipv6][:port]".
func validateKMSHost(h string) error {
	host, port := h, ""
	if strings.HasPrefix(h, "[") {
		end := strings.Index(h, "]")
		if end < 0 {
			return fmt.Errorf("%q has an unterminated IPv6 literal", h)
		}
		host, port = h[1:end], strings.TrimPrefix(h[end+1:], ":")
		if rest := h[end+1:]; rest != "" && !strings.HasPrefix(rest, ":") {
			return fmt.Errorf("%q: only \":port\" may follow the IPv6 address", h)
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return fmt.Errorf("%q is not a valid IPv6 address", host)
		}
	} else {
		if i := strings.LastIndex(h, ":"); i >= 0 {
			host, port = h[:i], h[i+1:]
		}
		if _, err := netip.ParseAddr(host); err != nil {
			labels := strings.Split(strings.TrimSuffix(host, "."), ".")
			if len(host) > 253 || host == "" {
				return fmt.Errorf("%q is not a host name", h)
			}
			for _, l := range labels {
				if !hostLabelRE.MatchString(l) {
					return fmt.Errorf("%q is not a host name or IP address", h)
				}
			}
		}
	}
	if port != "" || strings.HasSuffix(h, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q has an invalid port (1-65535)", h)
		}
	}
	return nil
}

// ImageName returns the install.wim image name (/IMAGE/NAME) that Windows
// 7 media use for edition e, e.g. "Windows 7 PROFESSIONAL"; "" for an
// unknown edition. Reading the names from the media's install.wim is more
// reliable (win7-spec §2.4); this is the fallback.
func ImageName(e license.Edition) string {
	switch e {
	case license.EditionStarter:
		return "Windows 7 STARTER"
	case license.EditionHomeBasic:
		return "Windows 7 HOMEBASIC"
	case license.EditionHomePremium:
		return "Windows 7 HOMEPREMIUM"
	case license.EditionProfessional:
		return "Windows 7 PROFESSIONAL"
	case license.EditionUltimate:
		return "Windows 7 ULTIMATE"
	case license.EditionEnterprise:
		return "Windows 7 ENTERPRISE"
	}
	return ""
}
