package orchestrator

import (
	"errors"
	"fmt"
	"time"
)

// reverter collects compensating actions while a multi-step operation runs
// and runs them, newest first, unless the operation succeeds:
//
//	r := newReverter()
//	defer func() { err = r.fail(err) }()
//	... r.add("delete volume x", func() error { return undo() }) ...
//	r.success()
//
// An undo that fails is retried (undoAttempts times in all, with a short
// pause) and, if it still fails, reported: fail joins every undo failure to
// the operation's error, so nothing left behind goes unsaid. Later undos
// can ask (failed) whether an earlier one failed, to keep what records the
// leftovers (a domain listing its volumes).
type reverter struct {
	undo   []undoStep
	done   bool
	failed bool
	// pause is the wait between attempts (tests shorten it).
	pause time.Duration
}

type undoStep struct {
	what string
	f    func() error
}

// undoAttempts is how often an undo is tried before it is reported.
const undoAttempts = 3

func newReverter() *reverter { return &reverter{pause: 500 * time.Millisecond} }

func (r *reverter) add(what string, f func() error) { r.undo = append(r.undo, undoStep{what, f}) }

// success keeps the work: fail does nothing afterwards.
func (r *reverter) success() { r.done = true }

// hasFailed reports whether an undo run so far failed for good.
func (r *reverter) hasFailed() bool { return r.failed }

// fail undoes everything added, in reverse order, unless success was called
// or err is nil, and returns err with every undo failure joined to it.
func (r *reverter) fail(err error) error {
	if r.done || err == nil {
		return err
	}
	r.done = true
	var undoErrs []error
	for i := len(r.undo) - 1; i >= 0; i-- {
		s := r.undo[i]
		var uerr error
		for attempt := 1; attempt <= undoAttempts; attempt++ {
			if uerr = s.f(); uerr == nil || errors.Is(uerr, errKept) {
				break
			}
			if attempt < undoAttempts {
				time.Sleep(r.pause * time.Duration(attempt))
			}
		}
		if uerr != nil {
			r.failed = true
			undoErrs = append(undoErrs, fmt.Errorf("%s: %w", s.what, uerr))
		}
	}
	if len(undoErrs) == 0 {
		return err
	}
	return fmt.Errorf("%w; undoing it left work behind: %w", err, errors.Join(undoErrs...))
}

// errKept marks an undo that deliberately kept an object (not retried).
var errKept = errors.New("kept")
