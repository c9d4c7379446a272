package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/legacyvm/legacyvm/internal/guestagent"
	"github.com/legacyvm/legacyvm/orchestrator"
	"github.com/legacyvm/legacyvm/profiles"
)

// CpOptions are the inputs of legacyvm cp.
type CpOptions struct {
	IO           *IOStreams
	Connect      orchestrator.Connector
	URI          string
	JSON         bool
	Src, Dst     string
	MaxSize      string
	NoVerify     bool
	AgentTimeout time.Duration
}

func NewCmdCp(f *Factory, runF func(*CpOptions) error) *cobra.Command {
	o := &CpOptions{}
	cmd := &cobra.Command{
		Use:   "cp SRC VM:DST | cp VM:SRC DST",
		Short: "Copy files and directories into or out of a VM through the guest agent",
		Long: `Cp copies a file or a directory (recursively) between this host and a running
VM through the QEMU guest agent: no network path is opened. One side is written
VM:PATH; a Windows path keeps its drive letter (acct-1:C:\stage\app.msi is VM
acct-1, path C:\stage\app.msi). The destination is the exact target path; end it
with / or \ to copy into that directory under the source's name.

Every file is moved in chunks and its SHA-256 is compared between guest
(sha256sum, or certutil on Windows) and host on arrival (--no-verify skips it).
Copies out of a VM are untrusted: names the guest lists must stay below the
destination (no .., no absolute paths, no host symlinks followed), and
--max-size bounds the bytes written to the host.`,
		Example: `  legacyvm cp ./build/app.msi 'acct-1:C:\stage\app.msi'
  legacyvm cp ./testdata 'acct-1:C:\stage\testdata'
  legacyvm cp 'acct-1:C:\stage\results' ./results/acct-1
  legacyvm cp --max-size 10GiB 'acct-2:C:\dumps\memory.dmp' ./memory.dmp`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.IO, o.Connect, o.URI, o.JSON = f.IO, f.Connect, f.URI(), f.JSON()
			o.Src, o.Dst = args[0], args[1]
			if runF != nil {
				return runF(o)
			}
			return cpRun(cmd.Context(), o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.MaxSize, "max-size", "4GiB", "most bytes a copy out of a VM may write to this host")
	fl.BoolVar(&o.NoVerify, "no-verify", false, "skip the SHA-256 comparison")
	fl.DurationVar(&o.AgentTimeout, "agent-timeout", guestagent.DefaultTimeout, "how long to wait for each guest agent reply")
	return cmd
}

var vmPathRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9_.-]*):(.*)$`)

// SplitVMPath splits "VM:PATH". A bare Windows drive path ("C:\x") or a
// host path is not a VM path: the VM part must be longer than one letter
// (VM names are), and "./x:y" style host paths start with . or /.
func SplitVMPath(s string) (vm, path string, ok bool) {
	m := vmPathRE.FindStringSubmatch(s)
	if m == nil || len(m[1]) < 2 || m[2] == "" {
		return "", "", false
	}
	return m[1], m[2], true
}

func cpRun(ctx context.Context, o *CpOptions) error {
	svm, spath, sok := SplitVMPath(o.Src)
	dvm, dpath, dok := SplitVMPath(o.Dst)
	if sok == dok {
		return errors.New("cp: exactly one of SRC and DST must be VM:PATH (e.g. legacyvm cp ./app.msi acct-1:C:\\stage\\app.msi)")
	}
	max, err := profiles.ParseSize(o.MaxSize)
	if err != nil || max == 0 {
		return fmt.Errorf("--max-size %q: want a size such as 4GiB", o.MaxSize)
	}
	vm := svm
	if dok {
		vm = dvm
	}
	hv, c, fl, err := agentSession(ctx, o.Connect, o.URI, vm, o.AgentTimeout)
	if err != nil {
		return err
	}
	defer hv.Close()
	co := guestagent.CopyOptions{MaxSize: int64(max), NoVerify: o.NoVerify}
	bar := newCopyBar(o.IO)
	co.Progress = bar.update
	start := time.Now()
	var st guestagent.CopyStats
	if dok {
		if strings.HasSuffix(dpath, "/") || strings.HasSuffix(dpath, `\`) {
			dpath = fl.Join(dpath, baseName(o.Src))
		}
		st, err = c.CopyIn(ctx, fl, o.Src, dpath, co)
	} else {
		dst := o.Dst
		if strings.HasSuffix(dst, "/") {
			dst += fl.Base(spath)
		}
		st, err = c.CopyOut(ctx, fl, spath, dst, co)
	}
	bar.done()
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(o.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(cpDoc{docHeader: v1, VM: vm, Src: o.Src, Dst: o.Dst, Files: st.Files, Dirs: st.Dirs, Bytes: st.Bytes,
			Verified: !o.NoVerify, Took: time.Since(start)})
	}
	verified := "verified"
	if o.NoVerify {
		verified = "not verified"
	}
	o.IO.Status("copied %d file(s), %s in %s (sha256 %s)", st.Files, profiles.FormatSize(uint64(st.Bytes)), time.Since(start).Round(100*time.Millisecond), verified)
	return nil
}

func baseName(p string) string {
	p = strings.TrimRight(p, `/\`)
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// copyBar draws one progress line on a terminal (nothing elsewhere).
type copyBar struct {
	io   *IOStreams
	mu   sync.Mutex
	last time.Time
	on   bool
}

func newCopyBar(io *IOStreams) *copyBar { return &copyBar{io: io, on: io.ErrTTY} }

func (b *copyBar) update(file string, done, total int64) {
	if !b.on {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if time.Since(b.last) < 100*time.Millisecond && done < total {
		return
	}
	b.last = time.Now()
	pct := 100
	if total > 0 {
		pct = int(done * 100 / total)
	}
	w := 30
	fill := w * pct / 100
	fmt.Fprintf(b.io.ErrOut, "\r\x1b[K[%s%s] %3d%% %s %s", strings.Repeat("#", fill), strings.Repeat(".", w-fill), pct,
		profiles.FormatSize(uint64(done)), guestagent.Sanitize(file, 50))
}

func (b *copyBar) done() {
	if b.on {
		fmt.Fprint(b.io.ErrOut, "\r\x1b[K")
	}
}
