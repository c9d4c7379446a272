package guestagent

import (
	"context"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// Flavor is what differs between guest operating systems: how a command
// is wrapped so that its output goes to files the host can stream, how a
// process is killed, how a file is hashed, how a directory is listed, and
// how paths are joined. The guest agent itself has no directory listing,
// no kill and no working directory on every version, so these run as
// programs in the guest.
type Flavor interface {
	// Name is "linux" or "windows".
	Name() string
	// Wrap returns the program and arguments that run argv in cwd ("" =
	// the agent's) with env added, writing stdout and stderr to the files
	// out and errf.
	Wrap(argv, env []string, cwd, out, errf string) (string, []string)
	// Kill returns the command that kills process pid (and, where the OS
	// can, its children).
	Kill(pid int) (string, []string)
	// Hash returns the command that prints file's SHA-256; ParseHash reads
	// its output (lowercase hex).
	Hash(file string) (string, []string)
	ParseHash(out []byte) (string, error)
	// ListFiles and ListDirs return the commands that list the regular
	// files and the directories below dir; ParseList returns the names
	// relative to dir (still to be checked with SafeRel).
	ListFiles(dir string) (string, []string)
	ListDirs(dir string) (string, []string)
	ParseList(dir string, out []byte) ([]string, error)
	// Mkdir returns the command that creates dir and its parents; Remove
	// the one that deletes files.
	Mkdir(dir string) (string, []string)
	Remove(files ...string) (string, []string)
	// TempDir is where legacyvm keeps a command's output files.
	TempDir() string
	// Join joins a guest directory and a relative slash-separated name.
	Join(dir, rel string) string
	// Base is the last element of a guest path.
	Base(p string) string
}

// FlavorFor picks the flavor from guest-get-osinfo's id ("mswindows" is
// Windows; everything else is treated as Linux/POSIX).
func FlavorFor(os OSInfo) Flavor {
	if os.ID == "mswindows" {
		return Windows{}
	}
	return Linux{}
}

// DetectFlavor asks the agent for the OS; agents without
// guest-get-osinfo (before QEMU 2.10) are taken for Linux.
func DetectFlavor(ctx context.Context, c *Client) (Flavor, error) {
	os, err := c.OSInfo(ctx)
	if err != nil {
		return nil, err
	}
	return FlavorFor(os), nil
}

// Linux is a POSIX guest with /bin/sh and coreutils or busybox.
type Linux struct{}

// linuxWrapper runs "$@" after the wrapper's own positional parameters:
// legacyvm-exec CWD OUT ERR N ENV1..ENVN CMD ARGS...; exec keeps the
// process id guest-exec reported, so a kill reaches the command itself.
const linuxWrapper = `cd "${1:-/}" || exit 126; o=$2; e=$3; n=$4; shift 4; ` +
	`while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n-1)); done; exec "$@" >"$o" 2>"$e"`

func (Linux) Name() string { return "linux" }

func (Linux) Wrap(argv, env []string, cwd, out, errf string) (string, []string) {
	args := []string{"-c", linuxWrapper, "legacyvm-exec", cwd, out, errf, strconv.Itoa(len(env))}
	args = append(args, env...)
	return "/bin/sh", append(args, argv...)
}

func (Linux) Kill(pid int) (string, []string) {
	return "/bin/kill", []string{"-KILL", strconv.Itoa(pid)}
}

func (Linux) Hash(file string) (string, []string) { return "sha256sum", []string{"--", file} }

var hexHash = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (Linux) ParseHash(out []byte) (string, error) {
	f := strings.Fields(string(out))
	if len(f) == 0 || !hexHash.MatchString(f[0]) {
		return "", fmt.Errorf("sha256sum printed no hash: %q", Sanitize(string(out), 100))
	}
	return strings.ToLower(f[0]), nil
}

func (Linux) ListFiles(dir string) (string, []string) {
	return "find", []string{dir, "-type", "f", "-print0"}
}

func (Linux) ListDirs(dir string) (string, []string) {
	return "find", []string{dir, "-type", "d", "-print0"}
}

func (Linux) ParseList(dir string, out []byte) ([]string, error) {
	prefix := strings.TrimSuffix(dir, "/") + "/"
	var names []string
	for _, n := range strings.Split(string(out), "\x00") {
		if n == "" || n == dir || n == strings.TrimSuffix(dir, "/") {
			continue
		}
		if !strings.HasPrefix(n, prefix) {
			return nil, fmt.Errorf("listing of %s holds %q, which is not below it", dir, Sanitize(n, 100))
		}
		names = append(names, strings.TrimPrefix(n, prefix))
	}
	return names, nil
}

func (Linux) Mkdir(dir string) (string, []string) { return "mkdir", []string{"-p", "--", dir} }

func (Linux) Remove(files ...string) (string, []string) {
	return "rm", append([]string{"-f", "--"}, files...)
}

func (Linux) TempDir() string             { return "/tmp" }
func (Linux) Join(dir, rel string) string { return path.Join(dir, rel) }
func (Linux) Base(p string) string        { return path.Base(p) }

// Windows is a Windows guest (qemu-ga from virtio-win, running as
// LocalSystem). Commands run through cmd.exe; see docs/guest-agent.md.
type Windows struct{}

func (Windows) Name() string { return "windows" }

// Wrap: cmd.exe /d /s /c ""cd /d "CWD" && set "K=V" && "PROG" ARGS >"OUT" 2>"ERR""
// /s strips the outer quotes; every word is quoted for cmd.
func (Windows) Wrap(argv, env []string, cwd, out, errf string) (string, []string) {
	var parts []string
	if cwd != "" {
		parts = append(parts, "cd /d "+cmdQuote(cwd))
	}
	for _, kv := range env {
		parts = append(parts, "set "+cmdQuote(kv))
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = cmdQuote(a)
	}
	parts = append(parts, strings.Join(words, " ")+" >"+cmdQuote(out)+" 2>"+cmdQuote(errf))
	return `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c", `"` + strings.Join(parts, " && ") + `"`}
}

// cmdQuote quotes one word for cmd.exe and the MSVC argument parser:
// inner quotes are doubled, % is escaped where cmd expands it.
func cmdQuote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

func (Windows) Kill(pid int) (string, []string) {
	return `C:\Windows\System32\taskkill.exe`, []string{"/F", "/T", "/PID", strconv.Itoa(pid)}
}

func (Windows) Hash(file string) (string, []string) {
	return `C:\Windows\System32\certutil.exe`, []string{"-hashfile", file, "SHA256"}
}

// ParseHash reads certutil's output: a header line, the hash (Windows 7
// prints it as space-separated byte pairs), a status line.
func (Windows) ParseHash(out []byte) (string, error) {
	for _, l := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		h := strings.ReplaceAll(strings.TrimSpace(l), " ", "")
		if hexHash.MatchString(h) {
			if _, err := hex.DecodeString(h); err == nil {
				return strings.ToLower(h), nil
			}
		}
	}
	return "", fmt.Errorf("certutil printed no SHA256 hash: %q", Sanitize(string(out), 100))
}

func (Windows) ListFiles(dir string) (string, []string) { return winList(dir, "-d") }

func (Windows) ListDirs(dir string) (string, []string) { return winList(dir, "d") }

// winList lists with dir /b /s /a:ATTR. dir /b that finds nothing says
// "File Not Found" and exits 1, also in an existing directory: that case
// is an empty listing (exit 0); a missing directory stays an error.
func winList(dir, attr string) (string, []string) {
	q := cmdQuote(dir)
	return `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c",
		`"dir /b /s /a:` + attr + ` ` + q + ` 2>nul || if exist ` + cmdQuote(strings.TrimRight(dir, `\`)+`\`) + ` exit /b 0"`}
}

// ParseList reads dir /b /s output: one full path a line (in the console
// code page; names outside ASCII may come out mangled). Names are returned
// with forward slashes.
func (Windows) ParseList(dir string, out []byte) ([]string, error) {
	prefix := strings.ToLower(strings.TrimRight(dir, `\`) + `\`)
	var names []string
	for _, l := range strings.Split(strings.ReplaceAll(string(out), "\r", ""), "\n") {
		if l == "" || strings.HasPrefix(l, "File Not Found") {
			continue
		}
		if !strings.HasPrefix(strings.ToLower(l), prefix) {
			return nil, fmt.Errorf("listing of %s holds %q, which is not below it", dir, Sanitize(l, 100))
		}
		names = append(names, strings.ReplaceAll(l[len(prefix):], `\`, "/"))
	}
	return names, nil
}

func (Windows) Mkdir(dir string) (string, []string) {
	// mkdir with command extensions creates the parents; "if not exist"
	// keeps an existing directory from being an error.
	return `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c", `"if not exist ` + cmdQuote(dir) + ` mkdir ` + cmdQuote(dir) + `"`}
}

func (Windows) Remove(files ...string) (string, []string) {
	q := make([]string, len(files))
	for i, f := range files {
		q[i] = cmdQuote(f)
	}
	return `C:\Windows\System32\cmd.exe`, []string{"/d", "/s", "/c", `"del /f /q ` + strings.Join(q, " ") + `"`}
}

func (Windows) TempDir() string { return `C:\Windows\Temp` }

func (Windows) Join(dir, rel string) string {
	return strings.TrimRight(dir, `\/`) + `\` + strings.ReplaceAll(rel, "/", `\`)
}

func (Windows) Base(p string) string {
	p = strings.TrimRight(p, `\/`)
	if i := strings.LastIndexAny(p, `\/:`); i >= 0 {
		return p[i+1:]
	}
	return p
}
