// Package libvirt implements virt.Hypervisor on libvirt.org/go/libvirt. It is
// the only package that imports the cgo binding; all XML comes from package
// domainxml (libvirtxml structs) and is parsed back by it.
//
// # Contract
//
//   - Connect registers libvirt's default event loop once per process
//     (before the first connection) and runs it in a goroutine; each
//     connection has keepalive (5 s, 3 probes) and a close callback.
//   - Every object libvirt returns is freed (each element of ListAll*
//     too). Close deregisters the event callback and reports an error when
//     the connection is still referenced afterwards, i.e. when an object
//     was not freed; the tests rely on it.
//   - libvirt.Error codes become virt's sentinel errors (see wrap): missing
//     objects ErrNotFound, OPERATION_INVALID ErrInvalidState, state change
//     lock timeouts ErrBusy, XML and configuration errors ErrInvalid, "in
//     use" ErrInUse, NO_SUPPORT ErrUnsupported, RPC failures ErrConnection,
//     duplicate names or UUIDs ErrExists. Errors name the object and keep
//     libvirt's message: `define domain "x": invalid definition: ...`.
//   - ctx is checked between libvirt calls (cgo calls cannot be
//     interrupted); waits (RevertSnapshot) poll with a deadline.
//   - Listing returns every object, legacyvm's or not (Metadata is nil for
//     foreign ones); lists are sorted by name.
//
// Where it is stricter than libvirt: UndefineDomain refuses a domain that
// is not shut off (libvirt would make it transient); DeleteFilter refuses a
// filter that any defined domain reaches, not only running ones;
// DeleteNetwork refuses a network with plugged-in NICs. Multi-step
// operations (EnsurePool, DefineNetwork, UploadVolume) undo their partial
// work when a step fails.
//
// Events: libvirt allows one identical lifecycle callback per connection,
// so the first Events call registers it and every channel is fed from it
// (without blocking the event loop: a full channel drops events). A channel
// is closed when its ctx ends, on Close, and when the connection drops (so
// a daemon can reconnect).
//
// Sub-package filterdiff holds the nwfilter comparison that FilterDiff and
// the in-memory fake share.
package libvirt
