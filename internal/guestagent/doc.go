// Package guestagent speaks QEMU's guest agent protocol (qemu-ga) through
// the hypervisor port's AgentCommand: ping, info, OS detection, guest-exec
// and guest-exec-status, guest-file-open/read/write/seek/close; and builds
// on it what legacyvm's exec, cp and test need: Run (a command whose output
// is streamed while it runs, with a timeout and an output bound, killed by
// a second guest-exec), CopyIn and CopyOut (files and directories in
// chunks, checked with SHA-256 computed in the guest), and the guest-OS
// flavours (Linux, Windows) that say how to wrap, kill, hash and list.
//
// Everything the guest sends is untrusted: replies are decoded strictly
// (unknown top-level members, wrong types and counts are ErrProtocol),
// base64 payloads are size-checked before they are decoded, names a guest
// lists must pass SafeRel and are written through an os.Root, and guest
// text is passed through Sanitize before it reaches a message.
package guestagent
