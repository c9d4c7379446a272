package virttest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// testAgent: AgentCommand relays guest agent commands to a running
// domain with the org.qemu.guest_agent.0 channel (the stand-in guest runs
// Debian's qemu-ga) and maps the failures onto the port's sentinels.
func testAgent(e *env) {
	name := e.name("ga")
	vol := e.overlay(name)
	spec := e.domainSpec(name, vol.Path, nil, "")
	spec.GuestAgent = true
	spec.OEMStrings = append(spec.OEMStrings, "rig.ip=none", "rig.listen=0", "rig.control=0")
	d := e.domain(spec)
	if !d.GuestAgent {
		e.Errorf("defined domain: GuestAgent = false, want true (the channel is in the definition)")
	}
	ping := []byte(`{"execute":"guest-ping"}`)
	_, err := e.hv.AgentCommand(e.ctx, name, ping, 5*time.Second)
	e.wantErr(err, virt.ErrInvalidState, name, "agent command to a shut-off domain")
	_, err = e.hv.AgentCommand(e.ctx, e.name("nodom"), ping, 5*time.Second)
	e.wantErr(err, virt.ErrNotFound, e.name("nodom"), "agent command to a missing domain")

	e.must(e.hv.StartDomain(e.ctx, name), "start %s", name)
	// The agent answers once the guest has booted; until then libvirt
	// says it is not connected.
	deadline := time.Now().Add(e.h.Timeout)
	for {
		_, err = e.hv.AgentCommand(e.ctx, name, ping, 5*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, virt.ErrAgentUnavailable) || time.Now().After(deadline) {
			e.Fatalf("guest-ping: %v (want success once the guest has booted)", err)
		}
		time.Sleep(time.Second)
	}

	call := func(cmd string, args any) map[string]json.RawMessage {
		e.Helper()
		b, err := json.Marshal(map[string]any{"execute": cmd, "arguments": args})
		e.must(err, "marshal %s", cmd)
		out, err := e.hv.AgentCommand(e.ctx, name, b, 30*time.Second)
		e.must(err, "agent command %s", cmd)
		var reply struct {
			Return json.RawMessage `json:"return"`
		}
		e.must(json.Unmarshal(out, &reply), "decode reply %s", out)
		var m map[string]json.RawMessage
		if json.Unmarshal(reply.Return, &m) != nil {
			m = map[string]json.RawMessage{"value": reply.Return}
		}
		return m
	}
	run := func(path string, args ...string) (int, string) {
		e.Helper()
		if args == nil {
			args = []string{} // qemu-ga rejects "arg": null
		}
		var pid int
		e.must(json.Unmarshal(call("guest-exec", map[string]any{"path": path, "arg": args, "capture-output": true})["pid"], &pid), "pid")
		for i := 0; i < 300; i++ {
			st := call("guest-exec-status", map[string]any{"pid": pid})
			if string(st["exited"]) == "true" {
				var code int
				var out string
				_ = json.Unmarshal(st["exitcode"], &code)
				_ = json.Unmarshal(st["out-data"], &out)
				b, err := base64.StdEncoding.DecodeString(out)
				e.must(err, "out-data")
				return code, string(b)
			}
			time.Sleep(100 * time.Millisecond)
		}
		e.Fatalf("%s %v did not exit", path, args)
		return 0, ""
	}
	if code, out := run("/bin/echo", "hello", "agent"); code != 0 || out != "hello agent\n" {
		e.Errorf("/bin/echo hello agent: exit %d output %q, want 0 and %q", code, out, "hello agent\n")
	}
	if code, _ := run("/bin/false"); code != 1 {
		e.Errorf("/bin/false: exit %d, want 1", code)
	}

	// Files: write, read back, then errors for what does not exist.
	var h int
	e.must(json.Unmarshal(call("guest-file-open", map[string]any{"path": "/tmp/vt-agent.txt", "mode": "w"})["value"], &h), "handle")
	call("guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString([]byte("abc\x00def"))})
	call("guest-file-close", map[string]any{"handle": h})
	e.must(json.Unmarshal(call("guest-file-open", map[string]any{"path": "/tmp/vt-agent.txt", "mode": "r"})["value"], &h), "handle")
	r := call("guest-file-read", map[string]any{"handle": h, "count": 1024})
	var buf string
	_ = json.Unmarshal(r["buf-b64"], &buf)
	if b, _ := base64.StdEncoding.DecodeString(buf); string(b) != "abc\x00def" || string(r["count"]) != "7" || string(r["eof"]) != "true" {
		e.Errorf("guest-file-read = %q count %s eof %s, want %q 7 true", b, r["count"], r["eof"], "abc\x00def")
	}
	call("guest-file-close", map[string]any{"handle": h})
	if code, out := run("/bin/sha256sum", "/tmp/vt-agent.txt"); code != 0 || len(out) < 64 || out[:64] != sha256hex("abc\x00def") {
		e.Errorf("sha256sum of the written file: exit %d %q", code, out)
	}

	// A file larger than one command: written in 96 KiB commands (the
	// size guestagent uses), read back in one 1 MiB read.
	big := make([]byte, 11*96<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	e.must(json.Unmarshal(call("guest-file-open", map[string]any{"path": "/tmp/vt-big.bin", "mode": "wb"})["value"], &h), "handle")
	for off := 0; off < len(big); off += 96 << 10 {
		call("guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString(big[off : off+96<<10])})
	}
	call("guest-file-close", map[string]any{"handle": h})
	e.must(json.Unmarshal(call("guest-file-open", map[string]any{"path": "/tmp/vt-big.bin", "mode": "rb"})["value"], &h), "handle")
	var got []byte
	for i := 0; i < 4; i++ {
		r := call("guest-file-read", map[string]any{"handle": h, "count": 1 << 20})
		var s string
		_ = json.Unmarshal(r["buf-b64"], &s)
		b, err := base64.StdEncoding.DecodeString(s)
		e.must(err, "decode read")
		got = append(got, b...)
		if string(r["eof"]) == "true" {
			break
		}
	}
	call("guest-file-close", map[string]any{"handle": h})
	if sha256hex(string(got)) != sha256hex(string(big)) {
		e.Errorf("1056 KiB written in 96 KiB commands read back as %d bytes with another checksum", len(got))
	}

	for _, c := range []struct{ what, cmd string }{
		{"open a missing file", `{"execute":"guest-file-open","arguments":{"path":"/nonexistent/x","mode":"r"}}`},
		{"status of an unknown pid", `{"execute":"guest-exec-status","arguments":{"pid":999999}}`},
		{"an unknown command", `{"execute":"guest-no-such-command"}`},
	} {
		_, err := e.hv.AgentCommand(e.ctx, name, []byte(c.cmd), 10*time.Second)
		e.wantErr(err, virt.ErrAgentCommand, name, c.what)
	}
}

func sha256hex(s string) string {
	return fmt.Sprintf("%x", sha256Sum([]byte(s)))
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
