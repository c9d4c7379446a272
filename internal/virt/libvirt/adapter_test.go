package libvirt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/testenv"
	"github.com/legacyvm/legacyvm/internal/virt"
)

// TestSentinel maps the libvirt errors legacyvm meets onto virt's sentinels
// (messages as libvirt 9.0 words them).
func TestSentinel(t *testing.T) {
	tests := []struct {
		code   libvirt.ErrorNumber
		domain libvirt.ErrorDomain
		msg    string
		want   error
	}{
		{libvirt.ERR_NO_DOMAIN, libvirt.FROM_QEMU, "Domain not found: no domain with matching name 'x'", virt.ErrNotFound},
		{libvirt.ERR_NO_NETWORK, libvirt.FROM_NETWORK, "Network not found: no network with matching name 'x'", virt.ErrNotFound},
		{libvirt.ERR_NO_NWFILTER, libvirt.FROM_NWFILTER, "Network filter not found: no nwfilter with matching name 'x'", virt.ErrNotFound},
		{libvirt.ERR_NO_STORAGE_VOL, libvirt.FROM_STORAGE, "Storage volume not found: no storage vol with matching path '/x'", virt.ErrNotFound},
		{libvirt.ERR_NO_STORAGE_POOL, libvirt.FROM_STORAGE, "Storage pool not found: no storage pool with matching name 'x'", virt.ErrNotFound},
		{libvirt.ERR_NO_DOMAIN_SNAPSHOT, libvirt.FROM_DOMAIN_SNAPSHOT, "Domain snapshot not found: no domain snapshot with matching name 'x'", virt.ErrNotFound},
		{libvirt.ERR_OPERATION_INVALID, libvirt.FROM_QEMU, "Requested operation is not valid: domain is already running", virt.ErrInvalidState},
		{libvirt.ERR_OPERATION_TIMEOUT, libvirt.FROM_QEMU, "Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML)", virt.ErrBusy},
		{libvirt.ERR_INTERNAL_ERROR, libvirt.FROM_QEMU, "internal error: cannot acquire state change lock", virt.ErrBusy},
		{libvirt.ERR_XML_ERROR, libvirt.FROM_DOMAIN, "XML error: unknown disk bus 'x'", virt.ErrInvalid},
		{libvirt.ERR_XML_INVALID_SCHEMA, libvirt.FROM_DOMAIN, "XML document failed to validate against schema", virt.ErrInvalid},
		{libvirt.ERR_CONFIG_UNSUPPORTED, libvirt.FROM_QEMU, "unsupported configuration: IDE controllers are unsupported", virt.ErrInvalid},
		{libvirt.ERR_OPERATION_INVALID, libvirt.FROM_NWFILTER, "Requested operation is not valid: nwfilter is in use", virt.ErrInUse},
		{libvirt.ERR_OPERATION_INVALID, libvirt.FROM_NETWORK, "Requested operation is not valid: network 'x' still has 2 active ports", virt.ErrInUse},
		{libvirt.ERR_NO_SUPPORT, libvirt.FROM_NONE, "this function is not supported by the connection driver", virt.ErrUnsupported},
		{libvirt.ERR_OPERATION_UNSUPPORTED, libvirt.FROM_QEMU, "Operation not supported: internal snapshots of a VM with pflash", virt.ErrUnsupported},
		{libvirt.ERR_NO_CONNECT, libvirt.FROM_REMOTE, "Failed to connect socket to '/x': No such file or directory", virt.ErrConnection},
		{libvirt.ERR_SYSTEM_ERROR, libvirt.FROM_RPC, "Cannot recv data: Connection reset by peer", virt.ErrConnection},
		{libvirt.ERR_INTERNAL_ERROR, libvirt.FROM_RPC, "internal error: client socket is closed", virt.ErrConnection},
		{libvirt.ERR_INVALID_CONN, libvirt.FROM_NONE, "invalid connection pointer", virt.ErrConnection},
		{libvirt.ERR_OPERATION_FAILED, libvirt.FROM_DOMAIN, "operation failed: domain 'x' already exists with uuid 0b7e2a10", virt.ErrExists},
		{libvirt.ERR_OPERATION_FAILED, libvirt.FROM_NETWORK, "operation failed: network 'x' is already defined with uuid 0b7e2a10", virt.ErrExists},
		{libvirt.ERR_INTERNAL_ERROR, libvirt.FROM_NETWORK, "internal error: bridge name 'x' already in use.", virt.ErrExists},
		{libvirt.ERR_STORAGE_VOL_EXIST, libvirt.FROM_STORAGE, "storage volume name 'x' already in use.", virt.ErrExists},
		{libvirt.ERR_SYSTEM_ERROR, libvirt.FROM_STORAGE, "Cannot access storage file '/x': No such file or directory", virt.ErrNotFound},
		{libvirt.ERR_INTERNAL_ERROR, libvirt.FROM_QEMU, "internal error: qemu unexpectedly closed the monitor", nil},
	}
	for _, tt := range tests {
		err := wrap("test", "obj", libvirt.Error{Code: tt.code, Domain: tt.domain, Message: tt.msg, Level: libvirt.ERR_ERROR})
		if !strings.Contains(err.Error(), `test "obj": `) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: error %q does not name the object and keep libvirt's message", tt.msg, err)
		}
		if tt.want == nil {
			for _, s := range []error{virt.ErrNotFound, virt.ErrExists, virt.ErrBusy, virt.ErrInvalidState, virt.ErrInvalid, virt.ErrUnsupported, virt.ErrInUse, virt.ErrConnection} {
				if errors.Is(err, s) {
					t.Errorf("%q maps to %v, want no sentinel", tt.msg, s)
				}
			}
			continue
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%q (code %d) = %v, want %v", tt.msg, tt.code, err, tt.want)
		}
	}
}

func connectEnv(t *testing.T, env *testenv.Env) *Hypervisor {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := Connect(ctx, env.URI)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestConnectFailure: no daemon behind the URI is ErrConnection.
func TestConnectFailure(t *testing.T) {
	ctx := context.Background()
	_, err := Connect(ctx, "qemu:///system?socket=/nonexistent/legacyvm/libvirt-sock")
	if !errors.Is(err, virt.ErrConnection) {
		t.Errorf("connect to a missing socket: %v, want ErrConnection", err)
	}
}

// TestForeignObjectsList: domains and networks without legacyvm's metadata
// are listed (Metadata nil); ownership is the caller's decision.
func TestForeignObjectsList(t *testing.T) {
	env := testenv.Libvirt(t)
	h := connectEnv(t, env)
	defer func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	dom, err := h.conn.DomainDefineXML(`<domain type='qemu'><name>foreign-dom</name><memory unit='MiB'>64</memory>
		<os><type arch='x86_64'>hvm</type></os><metadata><other xmlns="https://example.org/other">x</other></metadata></domain>`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = dom.Undefine(); dom.Free() }()
	net, err := h.conn.NetworkDefineXML(`<network><name>foreign-net</name><bridge name='frgn0'/></network>`)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = net.Undefine(); net.Free() }()

	doms, err := h.ListDomains(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(doms, func(d virt.Domain) bool { return d.Name == "foreign-dom" })
	if i < 0 {
		t.Fatalf("foreign domain not listed: %+v", doms)
	}
	if d := doms[i]; d.Metadata != nil || d.State != virt.StateShutoff || !strings.HasPrefix(d.Machine, "pc-") {
		t.Errorf("foreign domain = %+v, want no metadata, shut off, pinned machine", d)
	}
	nets, err := h.ListNetworks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	j := slices.IndexFunc(nets, func(n virt.Network) bool { return n.Name == "foreign-net" })
	if j < 0 {
		t.Fatalf("foreign network not listed: %+v", nets)
	}
	if n := nets[j]; n.Metadata != nil || n.Active || n.Bridge != "frgn0" {
		t.Errorf("foreign network = %+v, want no metadata, inactive, bridge frgn0", n)
	}
}

// TestFreeDiscipline opens, uses and closes many connections: Close reports
// any libvirt object that was not freed (it keeps a reference to the
// connection), and the process's open descriptors stay flat.
func TestFreeDiscipline(t *testing.T) {
	env := testenv.Libvirt(t)
	ctx := context.Background()
	// Objects to list: a pool with volumes, a network, filters, domains.
	h := connectEnv(t, env)
	if _, err := h.EnsurePool(ctx, "free-pool", env.PoolDir(t)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := h.CreateVolume(ctx, virt.VolumeSpec{Pool: "free-pool", Name: n + ".qcow2", Format: "qcow2", CapacityBytes: 1 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}

	round := func() {
		h := connectEnv(t, env)
		events, err := h.Events(ctx)
		if err != nil {
			t.Fatal(err)
		}
		steps := []func() error{
			func() error { _, err := h.HostInfo(ctx); return err },
			func() error { _, err := h.ListDomains(ctx); return err },
			func() error { _, err := h.ListNetworks(ctx); return err },
			func() error { _, err := h.ListFilters(ctx); return err },
			func() error { _, err := h.FilterBindings(ctx); return err },
			func() error { _, err := h.ListVolumes(ctx, "free-pool"); return err },
			func() error { _, err := h.GetPool(ctx, "free-pool"); return err },
			func() error {
				_, err := h.VolumeByPath(ctx, "/nonexistent.qcow2")
				return ignore(err, virt.ErrNotFound)
			},
			func() error { _, err := h.GetDomain(ctx, "missing"); return ignore(err, virt.ErrNotFound) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Close(); err != nil {
			t.Fatalf("close after a round of calls: %v", err)
		}
		if _, ok := <-events; ok {
			t.Fatal("events channel open after Close")
		}
	}
	round() // warm up: the event loop, cgo, libvirt's lazily opened files
	before := openFDs(t)
	for range 20 {
		round()
	}
	if after := openFDs(t); after > before+2 {
		t.Errorf("open file descriptors grew from %d to %d over 20 connect/list/close rounds", before, after)
	}
}

func ignore(err, sentinel error) error {
	if errors.Is(err, sentinel) {
		return nil
	}
	return err
}

func openFDs(t *testing.T) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(fds)
}

// failingReader fails after n bytes.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk read error")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

// TestUploadFailureLeavesNothing: a reader that fails midway (or a short
// one) fails the upload and the half-written volume is deleted.
func TestUploadFailureLeavesNothing(t *testing.T) {
	env := testenv.Libvirt(t)
	h := connectEnv(t, env)
	defer func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	}()
	ctx := context.Background()
	if _, err := h.EnsurePool(ctx, "upload-pool", env.PoolDir(t)); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"fails.iso": &failingReader{n: 300 << 10},
		"short.iso": bytes.NewReader(make([]byte, 100<<10)),
	} {
		_, err := h.UploadVolume(ctx, virt.VolumeSpec{Pool: "upload-pool", Name: name, Format: "raw"}, r, 1<<20)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("upload %s: %v, want an error naming the volume", name, err)
		}
	}
	vols, err := h.ListVolumes(ctx, "upload-pool")
	if err != nil {
		t.Fatal(err)
	}
	if len(vols) != 0 {
		t.Errorf("volumes left after failed uploads: %+v", vols)
	}
}

// TestConnectionLoss: when the daemon goes away, event channels close and
// calls fail with ErrConnection, so a daemon loop knows to reconnect.
func TestConnectionLoss(t *testing.T) {
	testenv.Libvirt(t) // fails or skips like the other tests when libvirt cannot run
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env, err := testenv.Start(ctx, testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop(ctx)
		}
	}()
	h := connectEnv(t, env)
	events, err := h.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped = true
	select {
	case _, ok := <-events:
		if ok {
			t.Error("got an event instead of a closed channel")
		}
	case <-time.After(45 * time.Second):
		t.Fatal("events channel still open 45 s after the daemon stopped")
	}
	if _, err := h.ListDomains(ctx); !errors.Is(err, virt.ErrConnection) {
		t.Errorf("list after the daemon stopped: %v, want ErrConnection", err)
	}
	if err := h.Close(); err != nil {
		t.Logf("close after connection loss: %v", err)
	}
}
