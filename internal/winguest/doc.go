// Package winguest knows Windows 7 as a guest: the hardware presets for
// win7-x64 and win7-x86, Autounattend.xml for installation from media,
// Unattend.xml for the specialize pass of sysprepped golden images, and the
// ISO9660+Joliet answer media that carries them.
//
// Presets (PresetFor) give the libvirt architecture, the answer-file
// processorArchitecture, the device models (i440fx "pc", SATA, e1000) and
// the memory, CPU and disk defaults and limits (win7-spec §1.1, §1.10).
//
// Answer files (Autounattend, SpecializeUnattend) are built from
// encoding/xml types, never from text: every component carries
// processorArchitecture, publicKeyToken, language and versionScope, list
// items carry wcm:action="add", and the passes and components are those of
// win7-spec §2.2. The product key goes to specialize Shell-Setup/ProductKey
// and, only with KeyAtWindowsPE, to windowsPE UserData/ProductKey/Key;
// SkipAutoActivation is always set. The first-logon commands end with the
// deletion of the answer files Setup cached on the disk and a power-off,
// which legacyvm waits for. Parameter errors (*ParamError, wrapping
// ErrInvalidParams) never contain the key or a password.
//
// Answer media (AnswerISO) is an in-memory ISO9660 image with Joliet names,
// written by go-diskfs without shelling out. The staging files it needs
// live in a private temporary directory that is removed before it returns.
// The caller uploads the image, attaches it as a second CD-ROM, and deletes
// the volume once setup powered the guest off: it holds the key.
//
// What this package never does: it ships, generates or guesses no product
// keys (not even Microsoft's published KMS client keys: the user supplies
// every key), injects no SLIC/MSDM ACPI tables or OEM firmware strings,
// never rearms or otherwise extends the activation grace period, and
// emulates no KMS host. Activation happens only through Microsoft's own
// slmgr.vbs (/skms, /ato) when the profile asks for it.
package winguest
