// Package winguest knows Windows 7 as a guest: the hardware presets for
// win7-x64 and win7-x86, Autounattend.xml for installation from media,
// Unattend.xml for the specialize pass of sysprepped golden images, and the
// ISO9660+Joliet answer media that carries them.
package winguest
