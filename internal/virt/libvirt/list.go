package libvirt

import "sort"

// listed is what libvirt's ListAll* calls return a slice of (Domain,
// Network, ...): objects to name and free.
type listed[O any] interface {
	*O
	GetName() (string, error)
	Free() error
}

// observeAll observes each object libvirt listed, frees every one of them
// (also on error), leaves out objects that vanished in between (observe
// returned a not-found error) and sorts the result by key.
func observeAll[O any, P listed[O], T any](op string, objs []O, observe func(name string, o P) (T, error), key func(T) string) ([]T, error) {
	defer func() {
		for i := range objs {
			_ = P(&objs[i]).Free()
		}
	}()
	out := make([]T, 0, len(objs))
	for i := range objs {
		name, err := P(&objs[i]).GetName()
		if err != nil {
			return nil, wrap(op, "", err)
		}
		v, err := observe(name, &objs[i])
		if isNotFoundWrapped(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	return out, nil
}
