package guestagent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// Port is the one hypervisor method the client needs (virt.Hypervisor has
// it).
type Port interface {
	AgentCommand(ctx context.Context, domain string, command []byte, timeout time.Duration) ([]byte, error)
}

// Limits on what the client accepts from a guest.
const (
	// MaxReply bounds one agent reply (libvirt's RPC strings are at most
	// 4 MiB anyway).
	MaxReply = 4 << 20
	// ReadChunk is how much one guest-file-read asks for (its base64
	// reply stays well below MaxReply).
	ReadChunk = 1 << 20
	// WriteChunk is how much one guest-file-write carries. Commands to the
	// agent are kept below 150 KB: with libvirt 9.0 a command larger than
	// the agent socket's send buffer (about 208 KiB by default) was never
	// delivered (measured: 64 KiB of data went through, 256 KiB stalled
	// until the timeout; the same qemu-ga took 1 MiB over a plain socket).
	WriteChunk = 96 << 10
	// MaxCapture bounds the captured output of helper commands (listings,
	// checksums) legacyvm runs in the guest.
	MaxCapture = 2 << 20
	// DefaultTimeout is the default wait for one agent command.
	DefaultTimeout = 30 * time.Second
)

// ErrProtocol marks a reply that does not follow the agent protocol (or
// exceeds a bound): the guest is treated as hostile and the operation
// stops.
var ErrProtocol = errors.New("guest agent protocol violation")

// Client speaks QEMU's guest agent protocol to one domain through the
// port. Every reply is untrusted: decoded strictly, bounded, and its text
// sanitised before it reaches an error message. A Client is safe for
// concurrent use (each call is one agent command).
type Client struct {
	hv     Port
	domain string
	// Timeout bounds each agent command (default DefaultTimeout).
	Timeout time.Duration
}

// New returns a client for domain.
func New(hv Port, domain string) *Client {
	return &Client{hv: hv, domain: domain, Timeout: DefaultTimeout}
}

// Domain is the domain the client talks to.
func (c *Client) Domain() string { return c.domain }

// call sends execute with args and decodes the reply's "return" into ret
// (nil: ignored). Unknown top-level members are a protocol violation.
func (c *Client) call(ctx context.Context, execute string, args any, ret any) error {
	req := map[string]any{"execute": execute}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		panic(err) // our own arguments always marshal
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s on %q: %w", execute, c.domain, err)
	}
	to := c.Timeout
	if to <= 0 {
		to = DefaultTimeout
	}
	out, err := c.hv.AgentCommand(ctx, c.domain, b, to)
	if err != nil {
		return fmt.Errorf("%s: %w", execute, err)
	}
	if len(out) > MaxReply {
		return c.violation(execute, "reply of %d bytes, more than %d", len(out), MaxReply)
	}
	var env struct {
		Return json.RawMessage `json:"return"`
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Return == nil || dec.More() {
		return c.violation(execute, "reply is not {\"return\": ...}")
	}
	if ret == nil {
		return nil
	}
	if err := json.Unmarshal(env.Return, ret); err != nil {
		return c.violation(execute, "unexpected reply: %s", Sanitize(err.Error(), 120))
	}
	return nil
}

func (c *Client) violation(execute, format string, args ...any) error {
	return fmt.Errorf("%s on %q: %w: %s", execute, c.domain, ErrProtocol, fmt.Sprintf(format, args...))
}

// Ping checks that the agent answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, "guest-ping", nil, nil)
}

// WaitReady pings until the agent answers or ctx ends (a guest still
// booting has no agent yet). It returns the last error on expiry.
func (c *Client) WaitReady(ctx context.Context, interval time.Duration) error {
	for {
		err := c.Ping(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, virt.ErrAgentUnavailable) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the guest agent of %q: %w (last: %v)", c.domain, ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}

// Info is what guest-info reports (bounded: at most 512 command names).
type Info struct {
	Version  string
	Commands []string // enabled commands
}

// Info asks the agent for its version and enabled commands.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var r struct {
		Version  string `json:"version"`
		Commands []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"supported_commands"`
	}
	if err := c.call(ctx, "guest-info", nil, &r); err != nil {
		return Info{}, err
	}
	if len(r.Commands) > 512 {
		return Info{}, c.violation("guest-info", "%d commands", len(r.Commands))
	}
	info := Info{Version: Sanitize(r.Version, 64)}
	for _, cmd := range r.Commands {
		if cmd.Enabled {
			info.Commands = append(info.Commands, Sanitize(cmd.Name, 64))
		}
	}
	return info, nil
}

// OSInfo is the part of guest-get-osinfo legacyvm uses.
type OSInfo struct {
	ID, Name, Version string
}

// OSInfo asks the agent which operating system the guest runs.
func (c *Client) OSInfo(ctx context.Context) (OSInfo, error) {
	var r struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if err := c.call(ctx, "guest-get-osinfo", nil, &r); err != nil {
		return OSInfo{}, err
	}
	return OSInfo{ID: Sanitize(r.ID, 64), Name: Sanitize(r.Name, 128), Version: Sanitize(r.Version, 64)}, nil
}

// ExecRequest is one guest-exec.
type ExecRequest struct {
	Path    string
	Args    []string
	Env     []string // replaces the agent's environment when not nil
	Input   []byte   // stdin
	Capture bool     // collect stdout/stderr (returned by ExecStatus)
}

// Exec starts a program in the guest and returns its process id.
func (c *Client) Exec(ctx context.Context, r ExecRequest) (int, error) {
	args := map[string]any{"path": r.Path, "arg": nonNil(r.Args), "capture-output": r.Capture}
	if r.Env != nil {
		args["env"] = r.Env
	}
	if r.Input != nil {
		args["input-data"] = base64.StdEncoding.EncodeToString(r.Input)
	}
	var ret struct {
		PID *int `json:"pid"`
	}
	if err := c.call(ctx, "guest-exec", args, &ret); err != nil {
		return 0, err
	}
	if ret.PID == nil || *ret.PID <= 0 {
		return 0, c.violation("guest-exec", "no process id")
	}
	return *ret.PID, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// ExecStatus is a guest process's state.
type ExecStatus struct {
	Exited bool
	// ExitCode is the exit code, or 128+Signal when a signal ended it.
	ExitCode int
	Signal   int
	Stdout   []byte
	Stderr   []byte
	// Truncated: the agent cut the captured output.
	Truncated bool
}

// ExecStatus polls process pid. Captured output larger than maxOutput
// bytes (per stream) is a protocol violation, checked before decoding.
func (c *Client) ExecStatus(ctx context.Context, pid, maxOutput int) (ExecStatus, error) {
	var r struct {
		Exited       bool    `json:"exited"`
		ExitCode     *int    `json:"exitcode"`
		Signal       *int    `json:"signal"`
		OutData      *string `json:"out-data"`
		ErrData      *string `json:"err-data"`
		OutTruncated bool    `json:"out-truncated"`
		ErrTruncated bool    `json:"err-truncated"`
	}
	if err := c.call(ctx, "guest-exec-status", map[string]any{"pid": pid}, &r); err != nil {
		return ExecStatus{}, err
	}
	st := ExecStatus{Exited: r.Exited, Truncated: r.OutTruncated || r.ErrTruncated}
	if r.ExitCode != nil {
		st.ExitCode = *r.ExitCode
	}
	if r.Signal != nil {
		st.Signal = *r.Signal
		if st.Signal < 0 || st.Signal > 255 {
			return ExecStatus{}, c.violation("guest-exec-status", "signal %d", st.Signal)
		}
		st.ExitCode = 128 + st.Signal
	}
	var err error
	if st.Stdout, err = c.decodeBounded("guest-exec-status", r.OutData, maxOutput); err != nil {
		return ExecStatus{}, err
	}
	if st.Stderr, err = c.decodeBounded("guest-exec-status", r.ErrData, maxOutput); err != nil {
		return ExecStatus{}, err
	}
	return st, nil
}

// decodeBounded decodes base64 s, refusing more than max bytes before
// decoding anything.
func (c *Client) decodeBounded(execute string, s *string, max int) ([]byte, error) {
	if s == nil || *s == "" {
		return nil, nil
	}
	if len(*s) > base64.StdEncoding.EncodedLen(max) {
		return nil, c.violation(execute, "%d bytes of base64 data, more than the limit of %d bytes", len(*s), max)
	}
	b, err := base64.StdEncoding.DecodeString(*s)
	if err != nil {
		return nil, c.violation(execute, "invalid base64 data")
	}
	return b, nil
}

// FileOpen opens path in the guest (mode as fopen: "r", "w", "a", with
// "b" for binary on Windows) and returns a handle.
func (c *Client) FileOpen(ctx context.Context, path, mode string) (int64, error) {
	var h *int64
	if err := c.call(ctx, "guest-file-open", map[string]any{"path": path, "mode": mode}, &h); err != nil {
		return 0, err
	}
	if h == nil || *h < 0 {
		return 0, c.violation("guest-file-open", "no handle")
	}
	return *h, nil
}

// FileRead reads at most count bytes (count <= ReadChunk) from handle h.
// The reply's count must match the data and not exceed count.
func (c *Client) FileRead(ctx context.Context, h int64, count int) ([]byte, bool, error) {
	if count <= 0 || count > ReadChunk {
		panic(fmt.Sprintf("guestagent: FileRead count %d", count))
	}
	var r struct {
		Count *int    `json:"count"`
		Buf   *string `json:"buf-b64"`
		EOF   bool    `json:"eof"`
	}
	if err := c.call(ctx, "guest-file-read", map[string]any{"handle": h, "count": count}, &r); err != nil {
		return nil, false, err
	}
	if r.Count == nil || r.Buf == nil {
		return nil, false, c.violation("guest-file-read", "reply without count or data")
	}
	b, err := c.decodeBounded("guest-file-read", r.Buf, count)
	if err != nil {
		return nil, false, err
	}
	if len(b) != *r.Count {
		return nil, false, c.violation("guest-file-read", "count %d but %d bytes of data", *r.Count, len(b))
	}
	return b, r.EOF, nil
}

// FileWrite writes data (at most WriteChunk bytes) to handle h.
func (c *Client) FileWrite(ctx context.Context, h int64, data []byte) error {
	if len(data) > WriteChunk {
		panic(fmt.Sprintf("guestagent: FileWrite of %d bytes", len(data)))
	}
	var r struct {
		Count *int `json:"count"`
		EOF   bool `json:"eof"`
	}
	if err := c.call(ctx, "guest-file-write", map[string]any{"handle": h, "buf-b64": base64.StdEncoding.EncodeToString(data)}, &r); err != nil {
		return err
	}
	if r.Count == nil || *r.Count != len(data) {
		return fmt.Errorf("guest-file-write on %q: short write", c.domain)
	}
	return nil
}

// FileSeek moves handle h to offset from the start and clears its EOF
// state (a file that grows can be read further).
func (c *Client) FileSeek(ctx context.Context, h int64, offset int64) error {
	var r struct {
		Position int64 `json:"position"`
		EOF      bool  `json:"eof"`
	}
	if err := c.call(ctx, "guest-file-seek", map[string]any{"handle": h, "offset": offset, "whence": "set"}, &r); err != nil {
		return err
	}
	if r.Position != offset {
		return c.violation("guest-file-seek", "position %d, want %d", r.Position, offset)
	}
	return nil
}

// FileClose closes handle h.
func (c *Client) FileClose(ctx context.Context, h int64) error {
	return c.call(ctx, "guest-file-close", map[string]any{"handle": h}, nil)
}

// Sanitize makes guest text safe to print: printable runes and tabs only
// (others, terminal escapes among them, become '?'), at most n runes.
func Sanitize(s string, n int) string {
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i >= n {
			b.WriteString("...")
			break
		}
		if !unicode.IsPrint(r) && r != '\t' {
			r = '?'
		}
		b.WriteRune(r)
		i++
	}
	return b.String()
}
