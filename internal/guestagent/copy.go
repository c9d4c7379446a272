package guestagent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"path/filepath"
	"strings"
)

// Limits on copies out of a guest.
const (
	// DefaultMaxSize bounds the bytes one copy out of a guest writes to
	// the host (all files together).
	DefaultMaxSize = 4 << 30
	// MaxEntries bounds the files and directories of one directory copy
	// out of a guest.
	MaxEntries = 100000
	maxRelPath = 4096
	maxDepth   = 64
)

// ErrUnsafeName: a name the guest listed would leave the destination (or
// is not a plain relative path); nothing is written for it.
var ErrUnsafeName = errors.New("unsafe file name from the guest")

// ErrChecksum: the copy's SHA-256 differs between guest and host.
var ErrChecksum = errors.New("checksum mismatch")

// CopyOptions tune CopyIn and CopyOut.
type CopyOptions struct {
	// MaxSize bounds what CopyOut writes (0 = DefaultMaxSize).
	MaxSize int64
	// NoVerify skips the SHA-256 comparison (computed in the guest with
	// sha256sum or certutil).
	NoVerify bool
	// Progress, when set, is called after each chunk with the bytes done
	// and the total known so far.
	Progress func(file string, done, total int64)
}

// CopyStats summarise a copy.
type CopyStats struct {
	Files, Dirs int
	Bytes       int64
}

// SafeRel checks a relative slash-separated name that came from the guest:
// no empty, "." or ".." element, not absolute, no drive letter or
// backslash, no control characters, bounded length and depth. It returns
// the name in host form.
func SafeRel(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("%w: %q: %s", ErrUnsafeName, Sanitize(name, 100), why)
	}
	if name == "" || len(name) > maxRelPath {
		return bad("empty or too long")
	}
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		return bad("absolute path")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '\\' {
			return bad("control character or backslash")
		}
	}
	parts := strings.Split(name, "/")
	if len(parts) > maxDepth {
		return bad("too deep")
	}
	for _, p := range parts {
		if p == "" || p == "." || p == ".." || len(p) > 255 {
			return bad("empty, '.' or '..' element")
		}
	}
	return filepath.FromSlash(name), nil
}

// CopyIn copies the host file or directory src to the guest path dst (the
// exact target: a directory's contents go below dst, which is created).
// Host symlinks are not followed (they are skipped in directories and
// refused as src).
func (c *Client) CopyIn(ctx context.Context, f Flavor, src, dst string, o CopyOptions) (CopyStats, error) {
	var st CopyStats
	fi, err := os.Lstat(src)
	if err != nil {
		return st, fmt.Errorf("copy %s to %q: %w", src, c.domain, err)
	}
	switch {
	case fi.Mode().IsRegular():
		return st, c.copyFileIn(ctx, f, src, dst, fi.Size(), o, &st)
	case fi.IsDir():
	default:
		return st, fmt.Errorf("copy %s to %q: not a regular file or directory", src, c.domain)
	}
	if err := c.mkdir(ctx, f, dst); err != nil {
		return st, err
	}
	st.Dirs++
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		g := f.Join(dst, filepath.ToSlash(rel))
		switch {
		case d.IsDir():
			st.Dirs++
			return c.mkdir(ctx, f, g)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			return c.copyFileIn(ctx, f, p, g, info.Size(), o, &st)
		}
		return nil // symlinks, devices: not copied
	})
	if err != nil {
		return st, fmt.Errorf("copy %s to %q: %w", src, c.domain, err)
	}
	return st, nil
}

func (c *Client) mkdir(ctx context.Context, f Flavor, dir string) error {
	p, a := f.Mkdir(dir)
	code, _, errb, err := c.Capture(ctx, p, a, MaxCapture)
	if err != nil {
		return fmt.Errorf("create directory %s in %q: %w", dir, c.domain, err)
	}
	if code != 0 {
		return fmt.Errorf("create directory %s in %q: exit code %d: %s", dir, c.domain, code, Sanitize(string(errb), 200))
	}
	return nil
}

func (c *Client) copyFileIn(ctx context.Context, f Flavor, src, dst string, size int64, o CopyOptions, st *CopyStats) error {
	fail := func(err error) error { return fmt.Errorf("copy %s to %q:%s: %w", src, c.domain, dst, err) }
	in, err := os.Open(src)
	if err != nil {
		return fail(err)
	}
	defer in.Close()
	h, err := c.FileOpen(ctx, dst, "wb")
	if err != nil {
		return fail(err)
	}
	sum := sha256.New()
	buf := make([]byte, WriteChunk)
	var done int64
	for {
		n, rerr := io.ReadFull(in, buf)
		if n > 0 {
			if err := c.FileWrite(ctx, h, buf[:n]); err != nil {
				c.closeDetached(ctx, h)
				return fail(err)
			}
			sum.Write(buf[:n])
			done += int64(n)
			if o.Progress != nil {
				o.Progress(dst, done, max(size, done))
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			c.closeDetached(ctx, h)
			return fail(rerr)
		}
	}
	if err := c.FileClose(ctx, h); err != nil {
		return fail(err)
	}
	st.Files++
	st.Bytes += done
	if o.NoVerify {
		return nil
	}
	return c.verify(ctx, f, dst, hex.EncodeToString(sum.Sum(nil)))
}

func (c *Client) closeDetached(ctx context.Context, h int64) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout())
	defer cancel()
	_ = c.FileClose(cctx, h)
}

// verify compares the guest's SHA-256 of file with want.
func (c *Client) verify(ctx context.Context, f Flavor, file, want string) error {
	got, err := c.GuestSHA256(ctx, f, file)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%s in %q: %w: guest %s, host %s", file, c.domain, ErrChecksum, got, want)
	}
	return nil
}

// GuestSHA256 computes the SHA-256 of a guest file in the guest.
func (c *Client) GuestSHA256(ctx context.Context, f Flavor, file string) (string, error) {
	p, a := f.Hash(file)
	code, out, errb, err := c.Capture(ctx, p, a, MaxCapture)
	if err != nil {
		return "", fmt.Errorf("checksum of %s in %q: %w", file, c.domain, err)
	}
	if code != 0 {
		return "", fmt.Errorf("checksum of %s in %q: exit code %d: %s", file, c.domain, code, Sanitize(string(errb), 200))
	}
	h, err := f.ParseHash(out)
	if err != nil {
		return "", fmt.Errorf("checksum of %s in %q: %w", file, c.domain, err)
	}
	return h, nil
}

// IsDir reports whether the guest path is a directory (by listing it).
func (c *Client) isDir(ctx context.Context, f Flavor, p string) (bool, error) {
	h, err := c.FileOpen(ctx, p, "rb")
	if err == nil {
		// Linux opens directories for reading too; a read tells.
		_, _, rerr := c.FileRead(ctx, h, 1)
		_ = c.FileClose(ctx, h)
		if rerr == nil {
			return false, nil
		}
	}
	prog, args := f.ListDirs(p)
	code, out, _, cerr := c.Capture(ctx, prog, args, MaxCapture)
	if cerr != nil {
		return false, cerr
	}
	if code != 0 {
		if err != nil {
			return false, fmt.Errorf("%s in %q: %w", p, c.domain, err)
		}
		return false, fmt.Errorf("%s in %q: neither a readable file nor a directory", p, c.domain)
	}
	_ = out
	return true, nil
}

// CopyOut copies the guest file or directory src to the host path dst
// (the exact target; a directory's contents go below dst, which is
// created). Names the guest lists are checked with SafeRel and written
// through an os.Root at dst, so nothing lands outside dst and no host
// symlink is followed; files are written under a temporary name and
// renamed once their checksum matches.
func (c *Client) CopyOut(ctx context.Context, f Flavor, src, dst string, o CopyOptions) (CopyStats, error) {
	var st CopyStats
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	dir, err := c.isDir(ctx, f, src)
	if err != nil {
		return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
	}
	if !dir {
		parent, err := os.OpenRoot(filepath.Dir(dst))
		if err != nil {
			return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
		}
		defer parent.Close()
		return st, c.copyFileOut(ctx, f, src, parent, filepath.Base(dst), o, &st)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
	}
	defer root.Close()
	list := func(prog string, args []string) ([]string, error) {
		code, out, errb, err := c.Capture(ctx, prog, args, MaxCapture)
		if err != nil {
			return nil, err
		}
		if code != 0 {
			return nil, fmt.Errorf("list %s: exit code %d: %s", src, code, Sanitize(string(errb), 200))
		}
		return f.ParseList(src, out)
	}
	dp, da := f.ListDirs(src)
	dirs, err := list(dp, da)
	if err != nil {
		return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
	}
	fp, fa := f.ListFiles(src)
	files, err := list(fp, fa)
	if err != nil {
		return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
	}
	if len(dirs)+len(files) > MaxEntries {
		return st, fmt.Errorf("copy %q:%s to %s: %w: %d entries, more than %d", c.domain, src, dst, ErrProtocol, len(dirs)+len(files), MaxEntries)
	}
	for _, d := range dirs {
		rel, err := SafeRel(d)
		if err != nil {
			return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
		}
		if err := root.MkdirAll(rel, 0o755); err != nil {
			return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
		}
		st.Dirs++
	}
	for _, name := range files {
		rel, err := SafeRel(name)
		if err != nil {
			return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
		}
		if d := filepath.Dir(rel); d != "." {
			if err := root.MkdirAll(d, 0o755); err != nil {
				return st, fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, dst, err)
			}
		}
		if err := c.copyFileOut(ctx, f, f.Join(src, name), root, rel, o, &st); err != nil {
			return st, err
		}
	}
	return st, nil
}

// copyFileOut copies guest file src to rel inside root.
func (c *Client) copyFileOut(ctx context.Context, f Flavor, src string, root *os.Root, rel string, o CopyOptions, st *CopyStats) error {
	target := filepath.Join(root.Name(), rel)
	fail := func(err error) error { return fmt.Errorf("copy %q:%s to %s: %w", c.domain, src, target, err) }
	if fi, err := root.Lstat(rel); err == nil && !fi.Mode().IsRegular() {
		return fail(fmt.Errorf("%w: the destination exists and is not a regular file", ErrUnsafeName))
	}
	h, err := c.FileOpen(ctx, src, "rb")
	if err != nil {
		return fail(err)
	}
	defer c.closeDetached(ctx, h)
	part := rel + ".legacyvm-part"
	out, err := root.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fail(err)
	}
	ok := false
	defer func() {
		if !ok {
			out.Close()
			_ = root.Remove(part)
		}
	}()
	sum := sha256.New()
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		want := int64(ReadChunk)
		if left := o.MaxSize - st.Bytes - done + 1; left < want {
			want = left
		}
		b, eof, err := c.FileRead(ctx, h, int(want))
		if err != nil {
			return fail(err)
		}
		if st.Bytes+done+int64(len(b)) > o.MaxSize {
			return fail(fmt.Errorf("more than %d bytes (raise --max-size)", o.MaxSize))
		}
		if _, err := out.Write(b); err != nil {
			return fail(err)
		}
		sum.Write(b)
		done += int64(len(b))
		if o.Progress != nil {
			o.Progress(src, done, done)
		}
		if eof || len(b) == 0 {
			break
		}
	}
	if err := out.Close(); err != nil {
		return fail(err)
	}
	if !o.NoVerify {
		if err := c.verify(ctx, f, src, hex.EncodeToString(sum.Sum(nil))); err != nil {
			return fail(err)
		}
	}
	if err := root.Rename(part, rel); err != nil {
		return fail(err)
	}
	ok = true
	st.Files++
	st.Bytes += done
	return nil
}
