package daemonstate

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/legacyvm/legacyvm/internal/relay"
)

// Write then Read gives back the state of a live daemon; a missing file or
// a daemon that is gone reads as ErrNoDaemon; Listeners lists only the
// doors the relay holds.
func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", File)
	if _, err := Read(path); !errors.Is(err, ErrNoDaemon) {
		t.Fatalf("missing file: %v, want ErrNoDaemon", err)
	}
	st := &State{PID: os.Getpid(), URI: "qemu:///system", Doors: []relay.DoorStatus{
		{Door: relay.Door{Key: "publish/app/rdp", Listen: "0.0.0.0:13389"}, Listening: true},
		{Door: relay.Door{Key: "publish/app/web", Listen: "0.0.0.0:18080"}},
	}}
	if err := Write(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil || got.URI != st.URI || len(got.Doors) != 2 {
		t.Fatalf("read %+v, %v", got, err)
	}
	if l := got.Listeners(); !l["0.0.0.0:13389"] || l["0.0.0.0:18080"] || len(l) != 1 {
		t.Errorf("listeners %v, want only the listening door", l)
	}
	if l := (*State)(nil).Listeners(); len(l) != 0 {
		t.Errorf("nil state listeners %v", l)
	}
	st.PID = 1 << 22 // beyond pid_max's default: no such process
	if err := Write(path, st); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("dead daemon: %v, want ErrNoDaemon", err)
	}
}
