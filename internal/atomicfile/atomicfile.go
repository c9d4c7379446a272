// Package atomicfile replaces files so that a reader (or a crash, a full
// disk, a file size limit) sees either the old content or the new one,
// never a truncated mix.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/google/renameio/v2"
)

// Replace writes data to the existing file name: to a temporary file in the
// same directory, synced to disk, with the original's permission bits (and,
// when run as root, its owner), then renamed over it. When name is a
// symbolic link, the file it points to is replaced and the link kept. On
// any error the original is untouched and the temporary file removed.
func Replace(name string, data []byte) error {
	target, err := filepath.EvalSymlinks(name)
	if err != nil {
		return err
	}
	st, err := os.Stat(target)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", target)
	}
	t, err := renameio.NewPendingFile(target, renameio.WithTempDir(filepath.Dir(target)))
	if err != nil {
		return err
	}
	defer t.Cleanup()
	// Chmod, not a creation mode: the umask must not change the mode.
	if err := t.Chmod(st.Mode().Perm()); err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		if err := t.Chown(int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
	}
	if _, err := t.Write(data); err != nil {
		return err
	}
	// CloseAtomicallyReplace syncs the data before the rename.
	return t.CloseAtomicallyReplace()
}
