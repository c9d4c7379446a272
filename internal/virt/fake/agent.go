package fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// guest is what QEMU's guest agent (qemu-ga 7.2 on Linux) sees of a running
// fake guest: an in-memory filesystem, the processes guest-exec started and
// open guest-file handles. It lives from StartDomain to the domain's stop
// and is saved with memory snapshots (a revert restores it, like a real
// guest's RAM). Programs are Go functions named by their base name (see
// guestPrograms); the fake's /bin/sh runs only legacyvm's exec wrapper
// (see runShell). A guest WithGuestOS marks as Windows imitates qemu-ga on
// Windows 7 instead (see windows.go).
type guest struct {
	files   map[string][]byte
	dirs    map[string]bool
	procs   map[int]*guestProc
	handles map[int]*guestHandle
	nextPID int
	nextFD  int
	// silent: the agent no longer answers (SetAgentSilent).
	silent bool
	// hook replaces the agent's answers (SetAgentHook).
	hook func(command []byte) ([]byte, error)
	// windows: the guest imitates qemu-ga on Windows 7 (see windows.go):
	// case-insensitive C:\ paths, cmd.exe and its programs.
	windows bool
	// hostname is what hostname/ipconfig print (Windows guests).
	hostname string
	// programs replace or add programs by lowercase name (SetGuestProgram).
	programs map[string]GuestProgram
}

type guestProc struct {
	exited   bool
	code     int
	signal   int
	capture  bool
	out, err []byte
	// redirect: the wrapper's output files, written when the process ends.
	outFile, errFile string
}

type guestHandle struct {
	path  string
	pos   int
	write bool
	app   bool
}

func newGuest() *guest {
	return &guest{
		files:   map[string][]byte{},
		dirs:    map[string]bool{"/": true, "/tmp": true, "/bin": true},
		procs:   map[int]*guestProc{},
		handles: map[int]*guestHandle{},
		nextPID: 100,
		nextFD:  1000,
	}
}

// clone deep-copies g (nil stays nil).
func (g *guest) clone() *guest {
	if g == nil {
		return nil
	}
	c := newGuest()
	c.dirs = map[string]bool{}
	for k, v := range g.files {
		c.files[k] = append([]byte(nil), v...)
	}
	for k := range g.dirs {
		c.dirs[k] = true
	}
	for k, v := range g.procs {
		p := *v
		c.procs[k] = &p
	}
	for k, v := range g.handles {
		hd := *v
		c.handles[k] = &hd
	}
	c.nextPID, c.nextFD, c.silent, c.hook = g.nextPID, g.nextFD, g.silent, g.hook
	c.windows, c.hostname, c.programs = g.windows, g.hostname, g.programs
	return c
}

// maxAgentCommand is the largest command the fake agent takes (see
// AgentCommand).
const maxAgentCommand = 192 << 10

// AgentCommand implements virt.Hypervisor with the fake guest's agent. It
// answers the commands legacyvm uses: guest-ping, guest-info,
// guest-get-osinfo, guest-exec, guest-exec-status, guest-file-open,
// -read, -write, -seek, -flush, -close.
func (h *Hypervisor) AgentCommand(ctx context.Context, name string, command []byte, timeout time.Duration) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	const op = "guest agent command"
	if err := h.begin(ctx, "AgentCommand", op, name); err != nil {
		return nil, err
	}
	d, err := h.lookupDomain(op, name)
	if err != nil {
		return nil, err
	}
	if d.state != virt.StateRunning || d.live == nil || d.guest == nil {
		return nil, errf(op, name, virt.ErrInvalidState, "domain is not running")
	}
	if !d.live.GuestAgent {
		return nil, errf(op, name, virt.ErrUnsupported, "QEMU guest agent is not configured")
	}
	g := d.guest
	if g.silent {
		return nil, errf(op, name, virt.ErrAgentUnavailable, "Guest agent is not responding: Guest agent not available for now")
	}
	if g.hook != nil {
		return g.hook(append([]byte(nil), command...))
	}
	if len(command) > maxAgentCommand {
		// What libvirt 9.0 does with a command larger than the agent
		// socket's send buffer: it is never delivered, the call times out.
		return nil, errf(op, name, virt.ErrAgentUnavailable, "Guest agent is not responding: Guest agent not available for now")
	}
	var req struct {
		Execute   string          `json:"execute"`
		Arguments json.RawMessage `json:"arguments"`
	}
	if err := json.Unmarshal(command, &req); err != nil || req.Execute == "" {
		return nil, errf(op, name, virt.ErrInvalid, "cannot parse json %s", command)
	}
	ret, aerr := g.run(req.Execute, req.Arguments)
	if aerr != "" {
		return nil, errf(op, name, virt.ErrAgentCommand, "unable to execute QEMU agent command '%s': %s", req.Execute, aerr)
	}
	out, err := json.Marshal(map[string]any{"return": ret})
	if err != nil {
		panic(err)
	}
	return out, nil
}

// SetAgentSilent makes the running domain's guest agent stop answering
// (on) or answer again (off), like a guest whose qemu-ga hangs.
func (h *Hypervisor) SetAgentSilent(name string, on bool) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.lookupDomain("silence guest agent", name)
	if err != nil {
		return err
	}
	if d.guest == nil {
		return errf("silence guest agent", name, virt.ErrInvalidState, "domain is not running")
	}
	d.guest.silent = on
	return nil
}

// SetAgentHook makes every AgentCommand to the running domain return what
// hook returns (nil restores the fake agent): tests use it to play a
// hostile guest that answers with malformed or oversized replies.
func (h *Hypervisor) SetAgentHook(name string, hook func(command []byte) ([]byte, error)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.lookupDomain("hook guest agent", name)
	if err != nil {
		return err
	}
	if d.guest == nil {
		return errf("hook guest agent", name, virt.ErrInvalidState, "domain is not running")
	}
	d.guest.hook = hook
	return nil
}

// GuestFile returns the content of a file in the running domain's fake
// guest (ok false when absent).
func (h *Hypervisor) GuestFile(name, p string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.domains[name]
	if !ok || d.guest == nil {
		return nil, false
	}
	b, ok := d.guest.files[d.guest.key(p)]
	return append([]byte(nil), b...), ok
}

// PutGuestFile writes a file (and its parent directories) into the
// running domain's fake guest. It is for tests only: it seeds what a real
// guest would already hold (an installer, a crash dump); p is a Windows
// path for a Windows guest (see WithGuestOS).
func (h *Hypervisor) PutGuestFile(name, p string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.domains[name]
	if !ok || d.guest == nil {
		return errf("put guest file", name, virt.ErrInvalidState, "domain is not running")
	}
	d.guest.putFile(p, data)
	return nil
}

// putFile writes a file and creates its parent directories.
func (g *guest) putFile(p string, data []byte) {
	p = g.key(p)
	g.mkdirAll(g.parent(p))
	g.files[p] = append([]byte(nil), data...)
}

func (g *guest) mkdirAll(dir string) {
	dir = g.key(dir)
	for !g.dirs[dir] {
		g.dirs[dir] = true
		up := g.parent(dir)
		if up == dir {
			return
		}
		dir = up
	}
}

// key is the map key of guest path p: path.Clean on Linux; on Windows the
// spelling of an existing file or directory that matches p without regard
// to case, else p cleaned (see winClean).
func (g *guest) key(p string) string {
	if !g.windows {
		return path.Clean(p)
	}
	return g.winKey(winClean(p))
}

// parent is the directory that holds p (a key); the root is its own.
func (g *guest) parent(p string) string {
	if !g.windows {
		return path.Dir(p)
	}
	return winDir(p)
}

// run executes one agent command; aerr is the agent's error description.
func (g *guest) run(cmd string, raw json.RawMessage) (ret any, aerr string) {
	args := map[string]json.RawMessage{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &args); err != nil {
			return nil, "Invalid parameter type, expected: object"
		}
	}
	str := func(k string) string {
		var s string
		_ = json.Unmarshal(args[k], &s)
		return s
	}
	num := func(k string, def int) int {
		v, ok := args[k]
		if !ok {
			return def
		}
		var n int
		_ = json.Unmarshal(v, &n)
		return n
	}
	switch cmd {
	case "guest-ping":
		return map[string]any{}, ""
	case "guest-sync":
		return num("id", 0), ""
	case "guest-info":
		var cmds []map[string]any
		for _, c := range []string{"guest-ping", "guest-info", "guest-get-osinfo", "guest-exec", "guest-exec-status",
			"guest-file-open", "guest-file-read", "guest-file-write", "guest-file-seek", "guest-file-flush", "guest-file-close"} {
			cmds = append(cmds, map[string]any{"name": c, "enabled": true, "success-response": true})
		}
		return map[string]any{"version": "7.2.0-fake", "supported_commands": cmds}, ""
	case "guest-get-osinfo":
		if g.windows {
			// qemu-ga 7.2 (virtio-win) on Windows 7 Professional SP1.
			return map[string]any{"id": "mswindows", "name": "Microsoft Windows", "pretty-name": "Windows 7 Professional",
				"version": "Microsoft Windows 7", "version-id": "7", "variant": "client", "variant-id": "client",
				"kernel-version": "6.1", "kernel-release": "7601", "machine": "x86_64"}, ""
		}
		return map[string]any{"id": "debian", "name": "Debian GNU/Linux (fake)", "kernel-release": "6.1.0-fake", "machine": "x86_64"}, ""
	case "guest-exec":
		var argv []string
		if a, ok := args["arg"]; ok && (string(a) == "null" || json.Unmarshal(a, &argv) != nil) {
			return nil, "Invalid parameter type for 'arg', expected: array"
		}
		var capture bool
		_ = json.Unmarshal(args["capture-output"], &capture)
		var stdin []byte
		if s := str("input-data"); s != "" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, "Invalid parameter 'input-data'"
			}
			stdin = b
		}
		p, err := g.spawn(str("path"), argv, stdin)
		if err != "" {
			return nil, err
		}
		p.capture = capture
		g.nextPID++
		g.procs[g.nextPID] = p
		return map[string]any{"pid": g.nextPID}, ""
	case "guest-exec-status":
		pid := num("pid", -1)
		p, ok := g.procs[pid]
		if !ok {
			return nil, "Invalid parameter 'pid'"
		}
		if !p.exited {
			return map[string]any{"exited": false}, ""
		}
		delete(g.procs, pid)
		r := map[string]any{"exited": true}
		if p.signal != 0 {
			r["signal"] = p.signal
		} else {
			r["exitcode"] = p.code
		}
		if p.capture {
			if len(p.out) > 0 {
				r["out-data"] = base64.StdEncoding.EncodeToString(p.out)
				r["out-truncated"] = false
			}
			if len(p.err) > 0 {
				r["err-data"] = base64.StdEncoding.EncodeToString(p.err)
				r["err-truncated"] = false
			}
		}
		return r, ""
	case "guest-file-open":
		p := g.key(str("path"))
		mode := strings.TrimSuffix(strings.ReplaceAll(str("mode"), "b", ""), "+")
		if mode == "" {
			mode = "r"
		}
		if g.windows {
			if msg := g.winOpenError(p, mode); msg != "" {
				return nil, fmt.Sprintf("failed to open file '%s': %s", str("path"), msg)
			}
		}
		if g.dirs[p] {
			return nil, fmt.Sprintf("failed to open file '%s' (mode: '%s'): Is a directory", p, str("mode"))
		}
		_, exists := g.files[p]
		switch mode {
		case "r":
			if !exists {
				return nil, fmt.Sprintf("failed to open file '%s' (mode: '%s'): No such file or directory", p, str("mode"))
			}
		case "w", "a":
			if !g.dirs[g.parent(p)] {
				return nil, fmt.Sprintf("failed to open file '%s' (mode: '%s'): No such file or directory", p, str("mode"))
			}
			if mode == "w" || !exists {
				g.files[p] = nil
			}
		default:
			return nil, "Invalid parameter 'mode'"
		}
		g.nextFD++
		g.handles[g.nextFD] = &guestHandle{path: p, write: mode != "r", app: mode == "a"}
		return g.nextFD, ""
	case "guest-file-read":
		hd, ok := g.handles[num("handle", -1)]
		if !ok {
			return nil, "handle '" + string(args["handle"]) + "' has not been found"
		}
		n := num("count", 4096)
		if n < 0 || n > 48<<20 {
			return nil, "value '" + strconv.Itoa(n) + "' is invalid for argument count"
		}
		data := g.files[hd.path]
		end := min(hd.pos+n, len(data))
		chunk := data[min(hd.pos, len(data)):end]
		hd.pos = max(end, hd.pos)
		return map[string]any{"count": len(chunk), "buf-b64": base64.StdEncoding.EncodeToString(chunk), "eof": hd.pos >= len(data)}, ""
	case "guest-file-write":
		hd, ok := g.handles[num("handle", -1)]
		if !ok {
			return nil, "handle '" + string(args["handle"]) + "' has not been found"
		}
		b, err := base64.StdEncoding.DecodeString(str("buf-b64"))
		if err != nil {
			return nil, "base64 decode failed"
		}
		if !hd.write {
			return nil, "failed to write to file: Bad file descriptor"
		}
		data := g.files[hd.path]
		if hd.app {
			hd.pos = len(data)
		}
		for len(data) < hd.pos {
			data = append(data, 0)
		}
		data = append(data[:hd.pos], append(b, data[min(hd.pos+len(b), len(data)):]...)...)
		g.files[hd.path] = data
		hd.pos += len(b)
		return map[string]any{"count": len(b), "eof": false}, ""
	case "guest-file-seek":
		hd, ok := g.handles[num("handle", -1)]
		if !ok {
			return nil, "handle '" + string(args["handle"]) + "' has not been found"
		}
		off := num("offset", 0)
		var whence any
		_ = json.Unmarshal(args["whence"], &whence)
		switch whence {
		case "set", float64(0):
		case "cur", float64(1):
			off += hd.pos
		case "end", float64(2):
			off += len(g.files[hd.path])
		default:
			return nil, "Invalid parameter 'whence'"
		}
		if off < 0 {
			return nil, "failed to seek file: Invalid argument"
		}
		hd.pos = off
		return map[string]any{"position": off, "eof": off >= len(g.files[hd.path])}, ""
	case "guest-file-flush":
		if _, ok := g.handles[num("handle", -1)]; !ok {
			return nil, "handle has not been found"
		}
		return map[string]any{}, ""
	case "guest-file-close":
		h := num("handle", -1)
		if _, ok := g.handles[h]; !ok {
			return nil, "handle '" + string(args["handle"]) + "' has not been found"
		}
		delete(g.handles, h)
		return map[string]any{}, ""
	}
	return nil, fmt.Sprintf("The command %s has not been found", cmd)
}

// guestProgram runs a program of the fake guest. running = true leaves the
// process running until it is killed.
type guestProgram func(g *guest, args []string, stdin []byte) (out, errb []byte, code int, running bool)

var guestPrograms map[string]guestProgram

func init() {
	guestPrograms = map[string]guestProgram{
		"echo": func(_ *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
			return []byte(strings.Join(a, " ") + "\n"), nil, 0, false
		},
		"true":  func(*guest, []string, []byte) ([]byte, []byte, int, bool) { return nil, nil, 0, false },
		"false": func(*guest, []string, []byte) ([]byte, []byte, int, bool) { return nil, nil, 1, false },
		"sleep": func(*guest, []string, []byte) ([]byte, []byte, int, bool) { return nil, nil, 0, true },
		"cat":   progCat,
		"sha256sum": func(g *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
			var out, errb bytes.Buffer
			code := 0
			for _, f := range dashless(a) {
				b, ok := g.files[path.Clean(f)]
				if !ok {
					fmt.Fprintf(&errb, "sha256sum: %s: No such file or directory\n", f)
					code = 1
					continue
				}
				sum := sha256.Sum256(b)
				fmt.Fprintf(&out, "%s  %s\n", hex.EncodeToString(sum[:]), f)
			}
			return out.Bytes(), errb.Bytes(), code, false
		},
		"mkdir": func(g *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
			for _, d := range dashless(a) {
				g.mkdirAll(path.Clean(d))
			}
			return nil, nil, 0, false
		},
		"rm": func(g *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
			for _, f := range dashless(a) {
				delete(g.files, path.Clean(f))
			}
			return nil, nil, 0, false
		},
		"kill": func(g *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
			code := 0
			for _, s := range dashless(a) {
				pid, err := strconv.Atoi(s)
				p, ok := g.procs[pid]
				if err != nil || !ok || p.exited {
					code = 1
					continue
				}
				p.exited, p.signal = true, 9
			}
			return nil, nil, code, false
		},
		"find": progFind,
	}
}

// dashless drops option words (-x, --).
func dashless(a []string) []string {
	var out []string
	for _, s := range a {
		if !strings.HasPrefix(s, "-") {
			out = append(out, s)
		}
	}
	return out
}

func progCat(g *guest, a []string, stdin []byte) ([]byte, []byte, int, bool) {
	if len(a) == 0 {
		return stdin, nil, 0, false
	}
	var out, errb bytes.Buffer
	code := 0
	for _, f := range a {
		b, ok := g.files[path.Clean(f)]
		if !ok {
			fmt.Fprintf(&errb, "cat: can't open '%s': No such file or directory\n", f)
			code = 1
			continue
		}
		out.Write(b)
	}
	return out.Bytes(), errb.Bytes(), code, false
}

// progFind supports "find DIR -type f|d -print0" (the listing legacyvm's
// Linux lister runs): entries below DIR, NUL-terminated, sorted.
func progFind(g *guest, a []string, _ []byte) ([]byte, []byte, int, bool) {
	if len(a) == 0 {
		return nil, []byte("find: no directory\n"), 1, false
	}
	dir := path.Clean(a[0])
	kind := ""
	for i := 1; i+1 < len(a); i++ {
		if a[i] == "-type" {
			kind = a[i+1]
		}
	}
	if !g.dirs[dir] {
		return nil, []byte("find: " + dir + ": No such file or directory\n"), 1, false
	}
	var names []string
	if kind != "d" {
		for f := range g.files {
			if strings.HasPrefix(f, dir+"/") {
				names = append(names, f)
			}
		}
	}
	if kind != "f" {
		for d := range g.dirs {
			if strings.HasPrefix(d, dir+"/") {
				names = append(names, d)
			}
		}
	}
	sort.Strings(names)
	var out bytes.Buffer
	for _, n := range names {
		out.WriteString(n)
		out.WriteByte(0)
	}
	return out.Bytes(), nil, 0, false
}

// spawn starts program p.
func (g *guest) spawn(p string, argv []string, stdin []byte) (*guestProc, string) {
	if g.windows {
		return g.winSpawn(p, argv, stdin)
	}
	if prog, ok := g.programs[path.Base(p)]; ok {
		out, errb, code := prog(argv, stdin)
		return &guestProc{exited: true, code: code, out: out, err: errb}, ""
	}
	if path.Base(p) == "sh" {
		return g.runShell(argv, stdin)
	}
	prog, ok := guestPrograms[path.Base(p)]
	if !ok {
		return nil, fmt.Sprintf("Guest agent command failed, error was 'Failed to execute child process \u201c%s\u201d (No such file or directory)'", p)
	}
	out, errb, code, running := prog(g, argv, stdin)
	return &guestProc{exited: !running, code: code, out: out, err: errb}, ""
}

// runShell is the fake /bin/sh: it understands only legacyvm's exec
// wrapper, sh -c SCRIPT legacyvm-exec CWD OUT ERR N ENV... CMD ARGS...
// (CMD's output goes to the files OUT and ERR; see guestagent's Linux
// flavour).
func (g *guest) runShell(argv []string, stdin []byte) (*guestProc, string) {
	if len(argv) < 7 || argv[0] != "-c" || argv[2] != "legacyvm-exec" {
		return &guestProc{exited: true, code: 2, err: []byte("sh: the fake guest's shell runs only legacyvm's exec wrapper\n")}, ""
	}
	cwd, outFile, errFile := argv[3], argv[4], argv[5]
	n, err := strconv.Atoi(argv[6])
	if err != nil || 7+n >= len(argv) {
		return &guestProc{exited: true, code: 2, err: []byte("sh: bad wrapper arguments\n")}, ""
	}
	if cwd == "" {
		cwd = "/"
	}
	if !g.dirs[path.Clean(cwd)] {
		return &guestProc{exited: true, code: 126}, ""
	}
	cmd := argv[7+n:]
	g.files[path.Clean(outFile)] = nil
	g.files[path.Clean(errFile)] = nil
	prog, ok := guestPrograms[path.Base(cmd[0])]
	if over, found := g.programs[path.Base(cmd[0])]; found {
		prog, ok = func(_ *guest, a []string, in []byte) ([]byte, []byte, int, bool) {
			out, errb, code := over(a, in)
			return out, errb, code, false
		}, true
	}
	if !ok {
		g.files[path.Clean(errFile)] = []byte("sh: " + cmd[0] + ": not found\n")
		return &guestProc{exited: true, code: 127}, ""
	}
	out, errb, code, running := prog(g, cmd[1:], stdin)
	p := &guestProc{exited: !running, code: code, outFile: path.Clean(outFile), errFile: path.Clean(errFile)}
	g.files[p.outFile], g.files[p.errFile] = out, errb
	return p, ""
}
