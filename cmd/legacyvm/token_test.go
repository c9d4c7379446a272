package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// token create prints the token alone on stdout; the store holds only its
// hash (0600); list and revoke never show a secret or a hash.
func TestTokenCommands(t *testing.T) {
	w := newFakeWorld(t)
	r := w.run(cliOpts{}, "token", "create", "--role", "tester", "--name", "alice", "--profile", "quickstart")
	if r.code != 0 {
		t.Fatalf("token create: exit %d\n%s", r.code, r.err)
	}
	token := strings.TrimSuffix(r.out, "\n")
	if !strings.HasPrefix(token, "lvmt_") || strings.ContainsAny(token, " \n\t") || len(token) < 40 {
		t.Fatalf("stdout %q, want the token alone", r.out)
	}
	if !strings.Contains(r.err, "shown only now") || strings.Contains(r.err, token) {
		t.Errorf("stderr %q", r.err)
	}
	path := filepath.Join(w.dir, "web", "tokens.json")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	_, secret, _ := strings.Cut(strings.TrimPrefix(token, "lvmt_"), "_")
	if fi.Mode().Perm() != 0o600 || strings.Contains(string(data), secret) || !strings.Contains(string(data), `"sha256"`) {
		t.Errorf("token store (mode %v) holds the secret or no hash:\n%s", fi.Mode().Perm(), data)
	}
	if r := w.run(cliOpts{}, "token", "create", "--role", "root"); r.code == 0 || !strings.Contains(r.err, "viewer, tester or admin") {
		t.Errorf("unknown role: exit %d %s", r.code, r.err)
	}

	r = w.run(cliOpts{}, "-o", "json", "token", "list")
	var list struct {
		FormatVersion int `json:"format_version"`
		Tokens        []map[string]any
	}
	if err := json.Unmarshal([]byte(r.out), &list); err != nil || list.FormatVersion != 1 || len(list.Tokens) != 1 {
		t.Fatalf("token list -o json: %v\n%s", err, r.out)
	}
	if tk := list.Tokens[0]; tk["name"] != "alice" || tk["role"] != "tester" || tk["sha256"] != nil {
		t.Errorf("listed token %v", tk)
	}
	r = w.run(cliOpts{}, "token", "list")
	if !strings.Contains(r.out, "alice") || strings.Contains(r.out, secret) || strings.Contains(r.out, "sha256") {
		t.Errorf("token list:\n%s", r.out)
	}
	if r := w.run(cliOpts{}, "token", "revoke", "alice"); r.code != 0 {
		t.Fatalf("revoke: %d %s", r.code, r.err)
	}
	if r := w.run(cliOpts{}, "token", "revoke", "alice"); r.code == 0 || !strings.Contains(r.err, "no such token") {
		t.Errorf("revoke twice: exit %d %s", r.code, r.err)
	}
}
