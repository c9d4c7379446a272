package winguest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// stagingPrefix starts the name of AnswerISO's staging directories in the
// temporary directory: legacyvm-answer-<pid>-<random>.
const stagingPrefix = "legacyvm-answer-"

// staleStagingAge is the age after which a staging directory whose owner
// cannot be told is stale: AnswerISO needs milliseconds.
const staleStagingAge = time.Hour

// newStagingDir makes AnswerISO's private staging directory, named with
// this process's id so that a later run can tell it was left behind.
func newStagingDir() (string, error) {
	return os.MkdirTemp("", stagingPrefix+strconv.Itoa(os.Getpid())+"-")
}

// CleanStaleStaging removes the staging directories of AnswerISO (they
// hold answer files with product keys) that a killed process left in the
// temporary directory: those of processes that no longer run, and those
// older than an hour whose process cannot be told (made before the process
// id was part of the name, or a reused id). Only real directories owned by
// the calling user are touched. It returns how many it removed, and the
// directories it could not remove.
func CleanStaleStaging(now time.Time) (int, error) {
	tmp := os.TempDir()
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return 0, fmt.Errorf("answer media: look for stale staging directories: %w", err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), stagingPrefix) {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		st, err := os.Lstat(path)
		if err != nil || !st.IsDir() {
			continue // gone meanwhile, or a symlink or file: not ours
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
			continue
		}
		if !staleStaging(e.Name(), st.ModTime(), now) {
			continue
		}
		if err := os.RemoveAll(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("answer media: remove stale staging directories (they hold answer files): %w", errors.Join(errs...))
	}
	return removed, nil
}

// staleStaging decides for one staging directory.
func staleStaging(name string, mod, now time.Time) bool {
	rest := strings.TrimPrefix(name, stagingPrefix)
	if pidStr, _, ok := strings.Cut(rest, "-"); ok {
		if pid, err := strconv.Atoi(pidStr); err == nil && pid > 0 {
			if pid == os.Getpid() {
				return false // this process is building media right now
			}
			if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
				return true
			}
		}
	}
	return now.Sub(mod) > staleStagingAge
}
