package orchestrator

// reverter collects compensating actions while a multi-step operation runs
// and runs them, newest first, unless the operation succeeds:
//
//	r := newReverter()
//	defer r.fail()
//	... r.add(func() { undo() }) ...
//	r.success()
type reverter struct {
	undo []func()
	done bool
}

func newReverter() *reverter { return &reverter{} }

func (r *reverter) add(f func()) { r.undo = append(r.undo, f) }

// success keeps the work: fail does nothing afterwards.
func (r *reverter) success() { r.done = true }

// fail undoes everything added, in reverse order, unless success was called.
func (r *reverter) fail() {
	if r.done {
		return
	}
	for i := len(r.undo) - 1; i >= 0; i-- {
		r.undo[i]()
	}
	r.done = true
}
