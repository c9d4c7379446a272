package web

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Who is the token's id (and name); "" for requests without a valid
	// token (failed logins).
	Who     string `json:"who"`
	Role    Role   `json:"role,omitempty"`
	Action  string `json:"action"` // "reset", "revert", "login", ...
	Profile string `json:"profile,omitempty"`
	VM      string `json:"vm,omitempty"`
	// Target is the action's argument (a snapshot name).
	Target string `json:"target,omitempty"`
	// Result is "ok", "denied" or "failed".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
	Remote string `json:"remote,omitempty"`
}

// AuditLog appends JSON lines to a file (mode 0600).
type AuditLog struct {
	mu sync.Mutex
	f  *os.File
}

// OpenAuditLog opens (creates) the log at path for appending.
func OpenAuditLog(path string) (*AuditLog, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return &AuditLog{f: f}, nil
}

// Write appends one entry; a failure to write is returned (the caller
// fails the request: an action that cannot be audited is not done).
func (a *AuditLog) Write(e AuditEntry) error {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write audit log: %w", err)
	}
	return nil
}

// Close closes the file.
func (a *AuditLog) Close() error { return a.f.Close() }
