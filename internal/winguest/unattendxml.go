package winguest

import "encoding/xml"

// XML namespaces of answer files.
const (
	// NamespaceUnattend is the default namespace of an answer file.
	NamespaceUnattend = "urn:schemas-microsoft-com:unattend"
	// NamespaceWCM carries the wcm:action attribute of list items.
	NamespaceWCM = "http://schemas.microsoft.com/WMIConfig/2002/State"
)

// Component attributes shared by every Windows 7 component (win7-spec §2.2).
const (
	publicKeyToken  = "31bf3856ad364e35"
	languageNeutral = "neutral"
	versionScope    = "nonSxS"
)

// Passes.
const (
	passWindowsPE  = "windowsPE"
	passSpecialize = "specialize"
	passOOBESystem = "oobeSystem"
	passGeneralize = "generalize"
)

// Component names.
const (
	compIntlWinPE  = "Microsoft-Windows-International-Core-WinPE"
	compSetup      = "Microsoft-Windows-Setup"
	compShellSetup = "Microsoft-Windows-Shell-Setup"
	compSPPUX      = "Microsoft-Windows-Security-SPP-UX"
	compIntl       = "Microsoft-Windows-International-Core"
	compPnpSysprep = "Microsoft-Windows-PnpSysprep"
	compSPP        = "Microsoft-Windows-Security-SPP"
)

// actionAdd marks a list item. The attribute is written with the wcm
// prefix that the root element declares (encoding/xml would otherwise
// invent a prefix and redeclare the namespace on every item).
const actionAdd = "add"

type unattendDoc struct {
	XMLName  xml.Name      `xml:"urn:schemas-microsoft-com:unattend unattend"`
	WCM      string        `xml:"xmlns:wcm,attr"`
	Settings []settingsXML `xml:"settings"`
}

type settingsXML struct {
	Pass       string `xml:"pass,attr"`
	Components []any  `xml:"component"`
}

// componentAttrs is embedded in every component.
type componentAttrs struct {
	Name                  string `xml:"name,attr"`
	ProcessorArchitecture string `xml:"processorArchitecture,attr"`
	PublicKeyToken        string `xml:"publicKeyToken,attr"`
	Language              string `xml:"language,attr"`
	VersionScope          string `xml:"versionScope,attr"`
}

func newComponent(name, arch string) componentAttrs {
	return componentAttrs{Name: name, ProcessorArchitecture: arch, PublicKeyToken: publicKeyToken, Language: languageNeutral, VersionScope: versionScope}
}

// windowsPE: Microsoft-Windows-International-Core-WinPE.
type intlCoreWinPEXML struct {
	componentAttrs
	SetupUILanguage struct {
		UILanguage string `xml:"UILanguage"`
	} `xml:"SetupUILanguage"`
	InputLocale  string `xml:"InputLocale"`
	SystemLocale string `xml:"SystemLocale"`
	UILanguage   string `xml:"UILanguage"`
	UserLocale   string `xml:"UserLocale"`
}

// windowsPE: Microsoft-Windows-Setup.
type setupXML struct {
	componentAttrs
	DynamicUpdate     dynamicUpdateXML     `xml:"DynamicUpdate"`
	DiskConfiguration diskConfigurationXML `xml:"DiskConfiguration"`
	ImageInstall      imageInstallXML      `xml:"ImageInstall"`
	UserData          userDataXML          `xml:"UserData"`
}

type dynamicUpdateXML struct {
	Enable     bool   `xml:"Enable"`
	WillShowUI string `xml:"WillShowUI"`
}

type diskConfigurationXML struct {
	WillShowUI string    `xml:"WillShowUI"`
	Disks      []diskXML `xml:"Disk"`
}

type diskXML struct {
	Action           string               `xml:"wcm:action,attr"`
	DiskID           int                  `xml:"DiskID"`
	WillWipeDisk     bool                 `xml:"WillWipeDisk"`
	CreatePartitions []createPartitionXML `xml:"CreatePartitions>CreatePartition"`
	ModifyPartitions []modifyPartitionXML `xml:"ModifyPartitions>ModifyPartition"`
}

type createPartitionXML struct {
	Action string `xml:"wcm:action,attr"`
	Order  int    `xml:"Order"`
	Type   string `xml:"Type"`
	SizeMB int    `xml:"Size,omitempty"`
	Extend bool   `xml:"Extend,omitempty"`
}

type modifyPartitionXML struct {
	Action      string `xml:"wcm:action,attr"`
	Order       int    `xml:"Order"`
	PartitionID int    `xml:"PartitionID"`
	Active      bool   `xml:"Active,omitempty"`
	Format      string `xml:"Format"`
	Label       string `xml:"Label"`
	Letter      string `xml:"Letter,omitempty"`
}

type imageInstallXML struct {
	OSImage struct {
		InstallFrom struct {
			MetaData []metaDataXML `xml:"MetaData"`
		} `xml:"InstallFrom"`
		InstallTo struct {
			DiskID      int `xml:"DiskID"`
			PartitionID int `xml:"PartitionID"`
		} `xml:"InstallTo"`
		InstallToAvailablePartition bool   `xml:"InstallToAvailablePartition"`
		WillShowUI                  string `xml:"WillShowUI"`
	} `xml:"OSImage"`
}

type metaDataXML struct {
	Action string `xml:"wcm:action,attr"`
	Key    string `xml:"Key"`
	Value  string `xml:"Value"`
}

type userDataXML struct {
	AcceptEula   bool   `xml:"AcceptEula"`
	FullName     string `xml:"FullName,omitempty"`
	Organization string `xml:"Organization,omitempty"`
	ProductKey   struct {
		Key        string `xml:"Key,omitempty"`
		WillShowUI string `xml:"WillShowUI"`
	} `xml:"ProductKey"`
}

// specialize: Microsoft-Windows-Shell-Setup.
type shellSetupSpecializeXML struct {
	componentAttrs
	ComputerName           string `xml:"ComputerName"`
	ProductKey             string `xml:"ProductKey,omitempty"`
	RegisteredOrganization string `xml:"RegisteredOrganization,omitempty"`
	RegisteredOwner        string `xml:"RegisteredOwner,omitempty"`
	TimeZone               string `xml:"TimeZone"`
}

// specialize: Microsoft-Windows-Security-SPP-UX.
type sppUXXML struct {
	componentAttrs
	SkipAutoActivation bool `xml:"SkipAutoActivation"`
}

// oobeSystem: Microsoft-Windows-International-Core.
type intlCoreXML struct {
	componentAttrs
	InputLocale  string `xml:"InputLocale"`
	SystemLocale string `xml:"SystemLocale"`
	UILanguage   string `xml:"UILanguage"`
	UserLocale   string `xml:"UserLocale"`
}

// oobeSystem: Microsoft-Windows-Shell-Setup.
type shellSetupOOBEXML struct {
	componentAttrs
	OOBE struct {
		HideEULAPage            bool   `xml:"HideEULAPage"`
		HideWirelessSetupInOOBE bool   `xml:"HideWirelessSetupInOOBE"`
		NetworkLocation         string `xml:"NetworkLocation"`
		ProtectYourPC           int    `xml:"ProtectYourPC"`
		SkipMachineOOBE         bool   `xml:"SkipMachineOOBE"`
		SkipUserOOBE            bool   `xml:"SkipUserOOBE"`
	} `xml:"OOBE"`
	UserAccounts struct {
		AdministratorPassword *passwordXML      `xml:"AdministratorPassword,omitempty"`
		LocalAccounts         []localAccountXML `xml:"LocalAccounts>LocalAccount,omitempty"`
	} `xml:"UserAccounts"`
	AutoLogon struct {
		Username   string      `xml:"Username"`
		Enabled    bool        `xml:"Enabled"`
		LogonCount int         `xml:"LogonCount"`
		Password   passwordXML `xml:"Password"`
	} `xml:"AutoLogon"`
	FirstLogonCommands []synchronousCommandXML `xml:"FirstLogonCommands>SynchronousCommand"`
	TimeZone           string                  `xml:"TimeZone"`
}

type passwordXML struct {
	Value     string `xml:"Value"`
	PlainText bool   `xml:"PlainText"`
}

type localAccountXML struct {
	Action   string      `xml:"wcm:action,attr"`
	Name     string      `xml:"Name"`
	Group    string      `xml:"Group"`
	Password passwordXML `xml:"Password"`
}

type synchronousCommandXML struct {
	Action            string `xml:"wcm:action,attr"`
	Order             int    `xml:"Order"`
	Description       string `xml:"Description"`
	CommandLine       string `xml:"CommandLine"`
	RequiresUserInput bool   `xml:"RequiresUserInput"`
}

// generalize: Microsoft-Windows-PnpSysprep.
type pnpSysprepXML struct {
	componentAttrs
	PersistAllDeviceInstalls bool `xml:"PersistAllDeviceInstalls"`
}

// generalize: Microsoft-Windows-Security-SPP. SkipRearm is 0 or 1.
type sppXML struct {
	componentAttrs
	SkipRearm int `xml:"SkipRearm"`
}
