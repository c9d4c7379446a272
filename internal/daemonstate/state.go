package daemonstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/legacyvm/legacyvm/internal/relay"
)

// DefaultRunDir holds legacyvm daemon's state file.
const DefaultRunDir = "/run/legacyvm"

// File is the name of the state file in the run directory.
const File = "daemon.json"

// State is what legacyvm daemon publishes in its state file after
// every tick, door change and isolation check: the doors its relay
// carries (with their counters) and its last check. verify, status and
// plan read it; it is never an input of the daemon itself (libvirt is the
// source of truth).
type State struct {
	PID     int       `json:"pid"`
	URI     string    `json:"uri"`
	Updated time.Time `json:"updated"`
	// Doors are the relay's doors, sorted by key.
	Doors []relay.DoorStatus `json:"doors"`
	// DoorProblems are recorded doors the relay cannot carry (no address
	// reservation, network gone).
	DoorProblems []string `json:"door_problems,omitempty"`
	// LastVerify is the last isolation check (nil before the first).
	LastVerify *VerifySummary `json:"last_verify,omitempty"`
}

// VerifySummary is one isolation check of the daemon, in short.
type VerifySummary struct {
	At         time.Time `json:"at"`
	OK         bool      `json:"ok"`
	VMs        int       `json:"vms"`
	Repaired   []string  `json:"repaired,omitempty"`
	Unrepaired []string  `json:"unrepaired,omitempty"`
	// Isolated maps each managed VM to whether all its checks passed.
	Isolated map[string]bool `json:"isolated,omitempty"`
}

// Write writes st to path atomically (0644: it holds no
// secret), creating the directory.
func Write(path string, st *State) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("daemon state: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("daemon state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("daemon state: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("daemon state: %w", err)
	}
	return nil
}

// ErrNoDaemon is returned (wrapped) by Read when no running daemon
// published its state.
var ErrNoDaemon = errors.New("legacyvm daemon is not running (no state file from a live daemon)")

// Read reads the state file at path. It returns ErrNoDaemon
// (wrapped) when the file is missing or its daemon is no longer alive.
func Read(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoDaemon)
	}
	if err != nil {
		return nil, err
	}
	var st State
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("daemon state %s: %w", path, err)
	}
	if st.PID <= 0 || syscall.Kill(st.PID, 0) == syscall.ESRCH {
		return nil, fmt.Errorf("%s (pid %d is gone): %w", path, st.PID, ErrNoDaemon)
	}
	return &st, nil
}

// Listeners returns the listen addresses of the doors the relay holds.
func (st *State) Listeners() map[string]bool {
	out := map[string]bool{}
	if st == nil {
		return out
	}
	for _, d := range st.Doors {
		if d.Listening {
			out[d.Listen] = true
		}
	}
	return out
}
