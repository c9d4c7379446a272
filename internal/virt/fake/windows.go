package fake

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// A Windows fake guest imitates qemu-ga (virtio-win) on Windows 7
// Professional SP1: guest-get-osinfo says mswindows, paths are
// case-insensitive C:\ paths, and guest-exec runs a small cmd.exe
// interpreter that understands exactly the forms legacyvm's Windows
// flavour (internal/guestagent, type Windows) and the help examples issue:
//
//   - cmd.exe /d /s /c "LINE" (without /s the line is taken as it is);
//   - a LINE is commands joined by &&, || or &, a command may pipe (|)
//     into another and redirect its output (>F, >>F, 2>F, 2>>F, F may be
//     nul); quotes group words;
//   - built-in commands: cd [/d] DIR, set "K=V" (and set, set PREFIX),
//     echo, rem, ver, type F, dir /b [/s] [/a:d|/a:-d] DIR, mkdir/md,
//     del/erase [/f] [/q] F..., exit [/b] N, if [not] exist P COMMAND;
//   - programs, found like cmd does (the directory given, else the
//     working directory then PATH, trying PATHEXT): the .exe files in
//     C:\Windows\System32 that winPrograms implements (cmd, certutil
//     -hashfile F SHA256, taskkill /F /T /PID N, ipconfig, hostname,
//     systeminfo, findstr /B /C:S, msiexec, timeout /t N), installers
//     named setup.exe that are present on the guest's disk, and .bat/.cmd
//     scripts whose lines the interpreter understands.
//
// The fake does not expand %VARIABLES%, has no parenthesised blocks, and
// strips the quotes of a command's name before looking it up. Anything
// else fails like cmd does: "'x' is not recognized as an internal or
// external command, operable program or batch file." with exit code 9009.

// GuestOS describes the guest a domain boots (see WithGuestOS).
type GuestOS struct {
	// Windows makes the guest agent imitate qemu-ga on Windows 7.
	Windows bool
	// Files are on the guest's disk when it boots (path → content; parent
	// directories are created): what the image holds, e.g. an installer.
	Files map[string][]byte
}

// WithGuestOS makes pick decide, for each domain StartDomain boots, which
// guest it runs. Without it (and when pick returns the zero GuestOS) the
// guest imitates qemu-ga on Linux, as the stand-in guest of the e2e tests
// and the conformance suite runs: every legacyvm domain carries libosinfo's
// win7 annotation, so the spec alone cannot tell the stand-in from Windows.
func WithGuestOS(pick func(spec virt.DomainSpec) GuestOS) Option {
	return func(h *Hypervisor) { h.guestOS = pick }
}

// GuestProgram is a program a test installs in a fake guest with
// SetGuestProgram.
type GuestProgram func(args []string, stdin []byte) (out, errb []byte, code int)

// SetGuestProgram installs prog as program name (a base name such as
// "find", or a cmd.exe command such as "dir"; matched without regard to
// case on Windows) in the running domain's guest, ahead of the fake's own
// programs and built-in commands: tests use it to play a hostile guest
// whose tools print what they like.
func (h *Hypervisor) SetGuestProgram(domain, name string, prog GuestProgram) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, err := h.lookupDomain("set guest program", domain)
	if err != nil {
		return err
	}
	if d.guest == nil {
		return errf("set guest program", domain, virt.ErrInvalidState, "domain is not running")
	}
	progs := map[string]GuestProgram{}
	for k, v := range d.guest.programs {
		progs[k] = v
	}
	if d.guest.windows {
		name = strings.ToLower(name)
	}
	progs[name] = prog
	d.guest.programs = progs
	return nil
}

// bootGuest is the guest of a domain that starts with spec.
func (h *Hypervisor) bootGuest(spec virt.DomainSpec) *guest {
	g := newGuest()
	var os GuestOS
	if h.guestOS != nil {
		os = h.guestOS(spec)
	}
	if os.Windows {
		g.windows = true
		g.hostname = strings.ToUpper(spec.Name)
		g.dirs = map[string]bool{}
		for _, d := range []string{`C:\Windows\System32`, `C:\Windows\Temp`, `C:\Users\Public`, `C:\Program Files`} {
			g.mkdirAll(d)
		}
		for name := range winPrograms {
			if name != "setup.exe" {
				g.putFile(`C:\Windows\System32\`+name, []byte("MZ fake "+name))
			}
		}
	}
	for p, b := range os.Files {
		g.putFile(p, b)
	}
	return g
}

// winClean cleans a Windows path: backslashes, no empty, "." or ".."
// elements, an upper-case drive (C: when none is given), no trailing
// backslash except the root's.
func winClean(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	drive := "C:"
	if len(p) >= 2 && p[1] == ':' {
		drive, p = strings.ToUpper(p[:1])+":", p[2:]
	}
	var parts []string
	for _, e := range strings.Split(p, `\`) {
		switch e {
		case "", ".":
		case "..":
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, e)
		}
	}
	return drive + `\` + strings.Join(parts, `\`)
}

// winDir is the directory of a clean path (the root is its own).
func winDir(p string) string {
	i := strings.LastIndex(p, `\`)
	if i <= 2 {
		return p[:3]
	}
	return p[:i]
}

func winBase(p string) string {
	p = strings.TrimRight(p, `\/`)
	if i := strings.LastIndexAny(p, `\/:`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// winKey returns the spelling under which a clean path is stored: NTFS
// keeps the case a name was created with and finds it in any case.
func (g *guest) winKey(c string) string {
	if _, ok := g.files[c]; ok || g.dirs[c] {
		return c
	}
	for k := range g.dirs {
		if strings.EqualFold(k, c) {
			return k
		}
	}
	for k := range g.files {
		if strings.EqualFold(k, c) {
			return k
		}
	}
	if up := winDir(c); up != c {
		return g.winKey(up) + c[len(up):]
	}
	return c
}

// winOpenError is the Windows error guest-file-open reports for key p, or "".
func (g *guest) winOpenError(p, mode string) string {
	if g.dirs[p] {
		return "Access is denied."
	}
	if !g.dirs[g.parent(p)] {
		return "The system cannot find the path specified."
	}
	if _, ok := g.files[p]; !ok && mode == "r" {
		return "The system cannot find the file specified."
	}
	return ""
}

// winResult is what a command did. keep: the command (a false if) leaves
// the previous exit code alone.
type winResult struct {
	out, err []byte
	code     int
	running  bool
	keep     bool
}

// winCmd is one cmd.exe: its working directory and environment.
type winCmd struct {
	g    *guest
	cwd  string
	env  map[string]string // names as set; looked up without regard to case
	exit bool              // exit ran: stop the line and the script
}

func (c *winCmd) getenv(k string) (string, bool) {
	for n, v := range c.env {
		if strings.EqualFold(n, k) {
			return v, true
		}
	}
	return "", false
}

func (c *winCmd) setenv(k, v string) {
	for n := range c.env {
		if strings.EqualFold(n, k) {
			delete(c.env, n)
		}
	}
	if v != "" {
		c.env[k] = v
	}
}

func (c *winCmd) child() *winCmd {
	n := &winCmd{g: c.g, cwd: c.cwd, env: map[string]string{}}
	for k, v := range c.env {
		n.env[k] = v
	}
	return n
}

// abs resolves p against the working directory and returns its key.
func (c *winCmd) abs(p string) string {
	switch {
	case len(p) >= 2 && p[1] == ':':
	case strings.HasPrefix(p, `\`) || strings.HasPrefix(p, "/"):
		p = c.cwd[:2] + p
	default:
		p = c.cwd + `\` + p
	}
	return c.g.key(p)
}

// winSpawn starts program p with guest-exec: qemu-ga's working directory
// is the service's, C:\Windows\System32.
func (g *guest) winSpawn(p string, argv []string, stdin []byte) (*guestProc, string) {
	c := &winCmd{g: g, cwd: `C:\Windows\System32`, env: map[string]string{
		"SystemRoot": `C:\Windows`, "windir": `C:\Windows`, "ComSpec": `C:\Windows\System32\cmd.exe`,
		"PATH": `C:\Windows\System32;C:\Windows`, "PATHEXT": ".COM;.EXE;.BAT;.CMD",
		"TEMP": `C:\Windows\Temp`, "TMP": `C:\Windows\Temp`, "COMPUTERNAME": g.hostname,
	}}
	r, found := c.runProgram(p, argv, strings.Join(argv, " "), stdin)
	if !found {
		return nil, fmt.Sprintf("Guest agent command failed, error was 'Failed to execute child process \u201c%s\u201d (No such file or directory)'", p)
	}
	return &guestProc{exited: !r.running, code: r.code, out: r.out, err: r.err}, ""
}

func notRecognized(name string) winResult {
	return winResult{err: []byte("'" + name + "' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"), code: 9009}
}

// lookPath finds a program file as cmd does; "" when there is none.
func (c *winCmd) lookPath(name string) string {
	exts := []string{""}
	if !strings.Contains(winBase(name), ".") {
		pe, _ := c.getenv("PATHEXT")
		exts = strings.Split(strings.ToLower(pe), ";")
	}
	var dirs []string
	if strings.ContainsAny(name, `\/:`) {
		dirs = []string{""}
	} else {
		dirs = []string{c.cwd}
		path, _ := c.getenv("PATH")
		dirs = append(dirs, strings.Split(path, ";")...)
	}
	for _, d := range dirs {
		for _, e := range exts {
			p := name + e
			if d != "" {
				p = d + `\` + p
			}
			k := c.abs(p)
			if _, ok := c.g.files[k]; ok {
				return k
			}
		}
	}
	return ""
}

// runProgram runs a program file (found with lookPath); found is false
// when there is no such file.
func (c *winCmd) runProgram(name string, args []string, raw string, stdin []byte) (winResult, bool) {
	if prog, ok := c.g.programs[strings.ToLower(winBase(name))]; ok {
		out, errb, code := prog(args, stdin)
		return winResult{out: out, err: errb, code: code}, true
	}
	file := c.lookPath(name)
	if file == "" {
		return winResult{}, false
	}
	base := strings.ToLower(winBase(file))
	switch {
	case strings.HasSuffix(base, ".bat") || strings.HasSuffix(base, ".cmd"):
		return c.script(file, stdin), true
	case strings.HasSuffix(base, ".exe") || strings.HasSuffix(base, ".com"):
		if prog, ok := winPrograms[base]; ok {
			return prog(c, args, raw, stdin), true
		}
	}
	return winResult{err: []byte("The fake guest cannot run " + file + ".\r\n"), code: 9009}, true
}

// script runs the lines of a .bat or .cmd file in c.
func (c *winCmd) script(file string, stdin []byte) winResult {
	var res winResult
	text := strings.ReplaceAll(string(c.g.files[file]), "\r", "")
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "@")
		low := strings.ToLower(l)
		if l == "" || low == "echo off" || low == "echo on" || low == "rem" || strings.HasPrefix(low, "rem ") || strings.HasPrefix(l, "::") {
			continue
		}
		r := c.line(l, stdin)
		res.out, res.err = append(res.out, r.out...), append(res.err, r.err...)
		if !r.keep {
			res.code = r.code
		}
		if r.running {
			res.running = true
			return res
		}
		if c.exit {
			break
		}
	}
	return res
}

// winToken is a word (raw: quotes kept) or an operator.
type winToken struct {
	op   string
	word string
}

// winLex splits a command line into words and the operators && || & |
// > >> 2> 2>>.
func winLex(s string) []winToken {
	var toks []winToken
	var cur strings.Builder
	in, quoted := false, false
	flush := func() {
		if in {
			toks = append(toks, winToken{word: cur.String()})
			cur.Reset()
			in = false
		}
	}
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if quoted {
			cur.WriteByte(ch)
			if ch == '"' {
				quoted = false
			}
			continue
		}
		switch {
		case ch == '"':
			cur.WriteByte(ch)
			in, quoted = true, true
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '&' || ch == '|':
			flush()
			op := string(ch)
			if i+1 < len(s) && s[i+1] == ch {
				op += string(ch)
				i++
			}
			toks = append(toks, winToken{op: op})
		case ch == '>':
			op := ">"
			if in && cur.String() == "2" {
				cur.Reset()
				in = false
				op = "2>"
			}
			flush()
			if i+1 < len(s) && s[i+1] == '>' {
				op += ">"
				i++
			}
			toks = append(toks, winToken{op: op})
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	flush()
	return toks
}

// winUnquote removes a word's quotes ("" inside quotes is one quote).
func winUnquote(w string) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(w); i++ {
		switch {
		case w[i] == '"' && quoted && i+1 < len(w) && w[i+1] == '"':
			b.WriteByte('"')
			i++
		case w[i] == '"':
			quoted = !quoted
		default:
			b.WriteByte(w[i])
		}
	}
	return b.String()
}

// line runs a command line.
func (c *winCmd) line(s string, stdin []byte) winResult {
	var res winResult
	toks := winLex(s)
	code, joiner := 0, "&"
	for len(toks) > 0 {
		// One pipeline: up to the next && || &.
		n := 0
		for n < len(toks) && toks[n].op != "&&" && toks[n].op != "||" && toks[n].op != "&" {
			n++
		}
		pipe := toks[:n]
		run := joiner == "&" || (joiner == "&&" && code == 0) || (joiner == "||" && code != 0)
		if run {
			r := c.pipeline(pipe, stdin)
			res.out, res.err = append(res.out, r.out...), append(res.err, r.err...)
			if !r.keep {
				code = r.code
			}
			if r.running {
				res.code, res.running = code, true
				return res
			}
			if c.exit {
				break
			}
		}
		if n == len(toks) {
			break
		}
		joiner = toks[n].op
		toks = toks[n+1:]
	}
	res.code = code
	return res
}

// pipeline runs commands joined by |.
func (c *winCmd) pipeline(toks []winToken, stdin []byte) winResult {
	var res winResult
	in := stdin
	for len(toks) > 0 {
		n := 0
		for n < len(toks) && toks[n].op != "|" {
			n++
		}
		r := c.redirected(toks[:n], in)
		res.err = append(res.err, r.err...)
		res.code, res.keep, res.running = r.code, r.keep, r.running
		if n == len(toks) || r.running {
			res.out = r.out
			break
		}
		in = r.out
		toks = toks[n+1:]
	}
	return res
}

// redirected runs one command with its redirections.
func (c *winCmd) redirected(toks []winToken, stdin []byte) winResult {
	type redir struct {
		fd   int
		app  bool
		file string
	}
	var words []string
	var reds []redir
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.op == "" {
			words = append(words, t.word)
			continue
		}
		if !strings.Contains(t.op, ">") || i+1 >= len(toks) || toks[i+1].op != "" {
			return winResult{err: []byte("The syntax of the command is incorrect.\r\n"), code: 1}
		}
		fd := 1
		if strings.HasPrefix(t.op, "2") {
			fd = 2
		}
		reds = append(reds, redir{fd: fd, app: strings.HasSuffix(t.op, ">>"), file: winUnquote(toks[i+1].word)})
		i++
	}
	// cmd opens (and truncates) the files before the command runs.
	for _, rd := range reds {
		if strings.EqualFold(rd.file, "nul") {
			continue
		}
		k := c.abs(rd.file)
		if !c.g.dirs[c.g.parent(k)] || c.g.dirs[k] {
			return winResult{err: []byte("The system cannot find the path specified.\r\n"), code: 1}
		}
		if _, ok := c.g.files[k]; !ok || !rd.app {
			c.g.files[k] = nil
		}
	}
	r := c.simple(words, stdin)
	for _, rd := range reds {
		data := &r.out
		if rd.fd == 2 {
			data = &r.err
		}
		if !strings.EqualFold(rd.file, "nul") {
			k := c.abs(rd.file)
			c.g.files[k] = append(c.g.files[k], *data...)
		}
		*data = nil
	}
	return r
}

// simple runs one command (raw words).
func (c *winCmd) simple(raw []string, stdin []byte) winResult {
	if len(raw) == 0 {
		return winResult{keep: true}
	}
	name := winUnquote(strings.TrimPrefix(raw[0], "@"))
	args := make([]string, len(raw)-1)
	for i, w := range raw[1:] {
		args[i] = winUnquote(w)
	}
	if prog, ok := c.g.programs[strings.ToLower(name)]; ok {
		out, errb, code := prog(args, stdin)
		return winResult{out: out, err: errb, code: code}
	}
	if b, ok := winBuiltins[strings.ToLower(name)]; ok {
		return b(c, args, raw[1:], stdin)
	}
	r, found := c.runProgram(name, args, strings.Join(raw[1:], " "), stdin)
	if !found {
		return notRecognized(name)
	}
	return r
}

type winBuiltin func(c *winCmd, args, raw []string, stdin []byte) winResult

var winBuiltins map[string]winBuiltin

// winProgram is an .exe of the fake Windows guest; raw is its command
// line after the program name.
type winProgram func(c *winCmd, args []string, raw string, stdin []byte) winResult

var winPrograms map[string]winProgram

func crlf(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n") }

func init() {
	cd := func(c *winCmd, args, _ []string, _ []byte) winResult {
		if len(args) > 0 && strings.EqualFold(args[0], "/d") {
			args = args[1:]
		}
		if len(args) == 0 {
			return winResult{out: crlf(c.cwd)}
		}
		k := c.abs(strings.Join(args, " "))
		if !c.g.dirs[k] {
			return winResult{err: crlf("The system cannot find the path specified."), code: 1}
		}
		c.cwd = k
		return winResult{}
	}
	mkdir := func(c *winCmd, args, _ []string, _ []byte) winResult {
		var r winResult
		for _, a := range args {
			k := c.abs(a)
			if _, f := c.g.files[k]; f || c.g.dirs[k] {
				r.err, r.code = append(r.err, crlf("A subdirectory or file "+a+" already exists.")...), 1
				continue
			}
			c.g.mkdirAll(k) // command extensions create the parents
		}
		return r
	}
	del := func(c *winCmd, args, _ []string, _ []byte) winResult {
		var r winResult
		for _, a := range args {
			if strings.HasPrefix(a, "/") {
				continue
			}
			k := c.abs(a)
			if _, ok := c.g.files[k]; ok {
				delete(c.g.files, k)
				continue
			}
			// del reports a missing file but still exits 0.
			r.err = append(r.err, crlf("Could Not Find "+k)...)
		}
		return r
	}
	winBuiltins = map[string]winBuiltin{
		"cd": cd, "chdir": cd, "mkdir": mkdir, "md": mkdir, "del": del, "erase": del,
		"rem": func(*winCmd, []string, []string, []byte) winResult { return winResult{keep: true} },
		"ver": func(*winCmd, []string, []string, []byte) winResult {
			return winResult{out: crlf("", "Microsoft Windows [Version 6.1.7601]")}
		},
		"echo": func(_ *winCmd, _, raw []string, _ []byte) winResult {
			return winResult{out: crlf(strings.Join(raw, " "))}
		},
		"set": func(c *winCmd, args, _ []string, _ []byte) winResult {
			if len(args) == 0 || !strings.Contains(args[0], "=") {
				prefix := strings.Join(args, " ")
				var names []string
				for k := range c.env {
					if strings.HasPrefix(strings.ToLower(k), strings.ToLower(prefix)) {
						names = append(names, k)
					}
				}
				if len(names) == 0 {
					return winResult{err: crlf("Environment variable " + prefix + " not defined"), code: 1}
				}
				sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
				var out bytes.Buffer
				for _, k := range names {
					out.Write(crlf(k + "=" + c.env[k]))
				}
				return winResult{out: out.Bytes()}
			}
			k, v, _ := strings.Cut(strings.Join(args, " "), "=")
			c.setenv(k, v)
			return winResult{}
		},
		"type": func(c *winCmd, args, _ []string, _ []byte) winResult {
			var r winResult
			for _, a := range args {
				b, ok := c.g.files[c.abs(a)]
				if !ok {
					r.err, r.code = append(r.err, crlf("The system cannot find the file specified.")...), 1
					continue
				}
				r.out = append(r.out, b...)
			}
			return r
		},
		"exit": func(c *winCmd, args, _ []string, _ []byte) winResult {
			c.exit = true
			if len(args) > 0 && strings.EqualFold(args[0], "/b") {
				args = args[1:]
			}
			code := 0
			if len(args) > 0 {
				code, _ = strconv.Atoi(args[0])
			}
			return winResult{code: code}
		},
		"if": func(c *winCmd, args, raw []string, stdin []byte) winResult {
			not := len(args) > 0 && strings.EqualFold(args[0], "not")
			if not {
				args, raw = args[1:], raw[1:]
			}
			if len(args) < 3 || !strings.EqualFold(args[0], "exist") {
				return winResult{err: crlf("The syntax of the command is incorrect."), code: 1}
			}
			p := args[1]
			k := c.abs(p)
			_, isFile := c.g.files[k]
			exists := c.g.dirs[k] || (isFile && !strings.HasSuffix(p, `\`))
			if exists == not {
				return winResult{keep: true}
			}
			return c.simple(raw[2:], stdin)
		},
		"dir": winDirCmd,
	}

	installer := func(*winCmd, []string, string, []byte) winResult { return winResult{} }
	winPrograms = map[string]winProgram{
		"cmd.exe":      winCmdExe,
		"certutil.exe": winCertutil,
		"taskkill.exe": winTaskkill,
		"hostname.exe": func(c *winCmd, _ []string, _ string, _ []byte) winResult { return winResult{out: crlf(c.g.hostname)} },
		"ipconfig.exe": func(c *winCmd, args []string, _ string, _ []byte) winResult {
			lines := []string{"", "Windows IP Configuration", ""}
			if len(args) > 0 && strings.EqualFold(args[0], "/all") {
				lines = append(lines, "   Host Name . . . . . . . . . . . . : "+c.g.hostname,
					"   Primary Dns Suffix  . . . . . . . : ", "   Node Type . . . . . . . . . . . . : Hybrid",
					"   IP Routing Enabled. . . . . . . . : No", "")
			}
			lines = append(lines, "Ethernet adapter Local Area Connection:", "",
				"   Connection-specific DNS Suffix  . : ",
				"   IPv4 Address. . . . . . . . . . . : 10.77.0.11", "   Subnet Mask . . . . . . . . . . . : 255.255.255.0",
				"   Default Gateway . . . . . . . . . : ")
			return winResult{out: crlf(lines...)}
		},
		"systeminfo.exe": func(c *winCmd, _ []string, _ string, _ []byte) winResult {
			return winResult{out: crlf("", "Host Name:                 "+c.g.hostname,
				"OS Name:                   Microsoft Windows 7 Professional",
				"OS Version:                6.1.7601 Service Pack 1 Build 7601",
				"System Type:               x64-based PC")}
		},
		"findstr.exe": func(_ *winCmd, args []string, _ string, stdin []byte) winResult {
			begin, want := false, ""
			for _, a := range args {
				switch {
				case strings.EqualFold(a, "/b"):
					begin = true
				case len(a) > 3 && strings.EqualFold(a[:3], "/c:"):
					want = a[3:]
				case !strings.HasPrefix(a, "/"):
					want = a
				}
			}
			var r winResult
			for _, l := range strings.SplitAfter(string(stdin), "\n") {
				t := strings.TrimRight(l, "\r\n")
				if t != "" && ((begin && strings.HasPrefix(t, want)) || (!begin && strings.Contains(t, want))) {
					r.out = append(r.out, crlf(t)...)
				}
			}
			if len(r.out) == 0 {
				r.code = 1
			}
			return r
		},
		"timeout.exe": func(*winCmd, []string, string, []byte) winResult { return winResult{running: true} },
		"msiexec.exe": installer,
		"setup.exe":   installer,
	}
}

// winCmdExe is cmd.exe [/d] [/q] [/s] /c LINE.
func winCmdExe(c *winCmd, _ []string, raw string, stdin []byte) winResult {
	rest := strings.TrimLeft(raw, " ")
	strip := false
	for {
		w, tail, _ := strings.Cut(rest, " ")
		switch strings.ToLower(winUnquote(w)) {
		case "/d", "/q":
			rest = strings.TrimLeft(tail, " ")
			continue
		case "/s":
			strip = true
			rest = strings.TrimLeft(tail, " ")
			continue
		case "/c":
			line := tail
			if strip && strings.HasPrefix(line, `"`) {
				line = line[1:]
				if i := strings.LastIndex(line, `"`); i >= 0 {
					line = line[:i] + line[i+1:]
				}
			}
			return c.child().line(line, stdin)
		}
		return winResult{err: crlf("The fake guest's cmd.exe runs only cmd /c COMMAND."), code: 1}
	}
}

// winDirCmd is dir /b [/s] [/a:d|/a:-d] [DIR].
func winDirCmd(c *winCmd, args, _ []string, _ []byte) winResult {
	bare, sub, attr, target := false, false, "", ""
	for _, a := range args {
		switch la := strings.ToLower(a); {
		case la == "/b":
			bare = true
		case la == "/s":
			sub = true
		case la == "/a:d" || la == "/ad":
			attr = "d"
		case la == "/a:-d" || la == "/a-d":
			attr = "-d"
		case strings.HasPrefix(la, "/"):
			return winResult{err: crlf("Invalid switch - \"" + a + "\"."), code: 1}
		default:
			target = a
		}
	}
	if !bare {
		return winResult{err: crlf("The fake guest's dir supports only /b."), code: 1}
	}
	dir := c.cwd
	if target != "" {
		dir = c.abs(target)
	}
	if !c.g.dirs[dir] {
		return winResult{err: crlf("File Not Found"), code: 1}
	}
	var out bytes.Buffer
	var walk func(d string)
	walk = func(d string) {
		var names []string
		isDir := map[string]bool{}
		for k := range c.g.files {
			if k != d && winDir(k) == d {
				names = append(names, k)
			}
		}
		for k := range c.g.dirs {
			if k != d && winDir(k) == d {
				names, isDir[k] = append(names, k), true
			}
		}
		sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
		for _, n := range names {
			if (attr == "d" && !isDir[n]) || (attr == "-d" && isDir[n]) {
				continue
			}
			if sub {
				out.Write(crlf(n))
			} else {
				out.Write(crlf(winBase(n)))
			}
		}
		if sub {
			for _, n := range names {
				if isDir[n] {
					walk(n)
				}
			}
		}
	}
	walk(dir)
	if out.Len() == 0 {
		// dir /b finds nothing: "File Not Found" and errorlevel 1.
		return winResult{err: crlf("File Not Found"), code: 1}
	}
	return winResult{out: out.Bytes()}
}

// winCertutil is certutil -hashfile FILE SHA256 with Windows 7's output:
// a header, the hash as space-separated byte pairs, a status line.
func winCertutil(c *winCmd, args []string, _ string, _ []byte) winResult {
	if len(args) < 2 || !strings.EqualFold(args[0], "-hashfile") || (len(args) > 2 && !strings.EqualFold(args[2], "SHA256")) {
		return winResult{out: crlf("CertUtil: Unknown arg: " + strings.Join(args, " ")), code: -2147024809}
	}
	b, ok := c.g.files[c.abs(args[1])]
	if !ok {
		return winResult{out: crlf("CertUtil: -hashfile command FAILED: 0x80070002 (WIN32: 2)", "CertUtil: The system cannot find the file specified."), code: -2147024894}
	}
	sum := sha256.Sum256(b)
	pairs := make([]string, len(sum))
	for i, x := range sum {
		pairs[i] = fmt.Sprintf("%02x", x)
	}
	return winResult{out: crlf("SHA256 hash of file "+args[1]+":", strings.Join(pairs, " "), "CertUtil: -hashfile command completed successfully.")}
}

// winTaskkill is taskkill /F /T /PID N: a process Windows terminates
// exits with code 1.
func winTaskkill(c *winCmd, args []string, _ string, _ []byte) winResult {
	pid := -1
	for i := 0; i+1 < len(args); i++ {
		if strings.EqualFold(args[i], "/pid") {
			pid, _ = strconv.Atoi(args[i+1])
		}
	}
	p, ok := c.g.procs[pid]
	if !ok || p.exited {
		return winResult{err: crlf(fmt.Sprintf("ERROR: The process %q not found.", strconv.Itoa(pid))), code: 128}
	}
	p.exited, p.code = true, 1
	return winResult{out: crlf(fmt.Sprintf("SUCCESS: The process with PID %d (child process of PID 4) has been terminated.", pid))}
}
