package provision

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/legacyvm/legacyvm/internal/e2eutil"
	"github.com/legacyvm/legacyvm/internal/testenv"
)

// doctorJSON is `doctor -o json` (docs/json.md).
type doctorJSON struct {
	FormatVersion int    `json:"format_version"`
	Host          string `json:"uri"`
	OK            bool   `json:"ok"`
	Findings      []struct {
		Check   string `json:"check"`
		Status  string `json:"status"`
		Message string `json:"message"`
		Fix     string `json:"fix"`
	} `json:"checks"`
}

// severityOfStatus maps a JSON check status to the severity words the
// cases and the text form use.
var severityOfStatus = map[string]string{"pass": "ok", "info": "info", "warn": "warning", "fail": "error"}

// fakeHostRoot writes a directory that stands for the host's root: the
// sysctl files doctor reads, with the given values.
func fakeHostRoot(t *testing.T, bridgeNF, rpAll, rpDefault string) string {
	t.Helper()
	root := t.TempDir()
	for path, v := range map[string]string{
		"proc/sys/net/bridge/bridge-nf-call-iptables": bridgeNF,
		"proc/sys/net/ipv4/conf/all/rp_filter":        rpAll,
		"proc/sys/net/ipv4/conf/default/rp_filter":    rpDefault,
		"proc/sys/net/ipv4/ip_forward":                "0",
	} {
		p := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// toolsPath is a PATH directory holding only the named host tools.
func toolsPath(t *testing.T, tools ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("the host has no %s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestDoctor runs doctor against hosts where something is deliberately
// missing or weakened, and checks each finding, its fix and the exit code
// (1 only when a check fails; warnings do not fail).
func TestDoctor(t *testing.T) {
	t.Parallel()
	h := e2eutil.NewHost(t)

	// A fresh harness host: its own libvirtd, without any storage pool.
	ctx, cancel := context.WithTimeout(context.Background(), testenv.StartTimeout)
	fresh, err := testenv.Start(ctx, testenv.Options{Logf: t.Logf})
	cancel()
	if err != nil {
		testenv.Unavailable(t, "a second libvirt instance", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := fresh.Stop(ctx); err != nil {
			t.Errorf("stop the fresh instance: %v", err)
		}
	})
	if out, err := fresh.Virsh(ctxT(t, time.Minute), "pool-list", "--all", "--name"); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Fatalf("the fresh host has pools (%v): %q", err, out)
	}
	healthy := fakeHostRoot(t, "1", "2", "2")
	weak := fakeHostRoot(t, "0", "0", "0")
	allTools := toolsPath(t, "ebtables", "iptables")
	noEbtables := toolsPath(t, "iptables")

	for _, tc := range []struct {
		name  string
		uri   string
		env   []string
		code  int
		want  map[string]string // check -> severity
		fixes map[string]string // check -> regexp the fix must match
	}{
		{
			name: "no storage pool",
			uri:  fresh.URI,
			env:  []string{"LEGACYVM_HOST_ROOT=" + healthy, "PATH=" + allTools},
			code: 0,
			want: map[string]string{"libvirt": "ok", "qemu": "ok", "storage pool": "warning", "ebtables": "ok", "iptables": "ok",
				"bridge-nf-call-iptables": "ok", "rp_filter": "ok"},
			fixes: map[string]string{"storage pool": `virsh pool-define-as default dir --target /var/lib/libvirt/images .*virsh pool-start default`},
		},
		{
			name: "pool present, isolation weakened by sysctls",
			uri:  h.URI,
			env:  []string{"LEGACYVM_HOST_ROOT=" + weak, "PATH=" + allTools},
			code: 0,
			want: map[string]string{"libvirt": "ok", "storage pool": "ok", "bridge-nf-call-iptables": "warning", "rp_filter": "warning"},
			fixes: map[string]string{
				"bridge-nf-call-iptables": `^sysctl -w net\.bridge\.bridge-nf-call-iptables=1`,
				"rp_filter":               `^sysctl -w net\.ipv4\.conf\.all\.rp_filter=2 net\.ipv4\.conf\.default\.rp_filter=2`,
			},
		},
		{
			name:  "ebtables missing",
			uri:   h.URI,
			env:   []string{"LEGACYVM_HOST_ROOT=" + healthy, "PATH=" + noEbtables},
			code:  1,
			want:  map[string]string{"ebtables": "error", "iptables": "ok", "storage pool": "ok"},
			fixes: map[string]string{"ebtables": `^apt-get install iptables`},
		},
		{
			name:  "libvirtd not reachable",
			uri:   "qemu:///system?socket=" + filepath.Join(t.TempDir(), "no-such-socket"),
			env:   []string{"LEGACYVM_HOST_ROOT=" + healthy, "PATH=" + allTools},
			code:  1,
			want:  map[string]string{"libvirt": "error", "ebtables": "ok"},
			fixes: map[string]string{"libvirt": `start libvirtd`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := "default"
			if tc.uri == h.URI {
				pool = h.Pool
			}
			args := []string{"doctor", "--connect", tc.uri, "--pool", pool}
			r := h.RunEnv(t, tc.env, append(args, "-o", "json")...)
			if r.Code != tc.code {
				t.Errorf("doctor -o json: exit %d, want %d\n%s", r.Code, tc.code, r)
			}
			var doc doctorJSON
			dec := json.NewDecoder(strings.NewReader(r.Stdout))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&doc); err != nil {
				t.Fatalf("doctor -o json does not parse: %v\n%s", err, r)
			}
			if doc.OK != (tc.code == 0) || doc.Host != tc.uri || doc.FormatVersion != 1 {
				t.Errorf("doctor -o json: ok=%v host=%q, want ok=%v host=%q", doc.OK, doc.Host, tc.code == 0, tc.uri)
			}
			got := map[string]string{}
			for _, f := range doc.Findings {
				sev := severityOfStatus[f.Status]
				got[f.Check] = sev
				if sev != "ok" && sev != "info" && f.Fix == "" {
					t.Errorf("finding %s (%s) has no fix: %s", f.Check, f.Status, f.Message)
				}
				if re, ok := tc.fixes[f.Check]; ok && !regexp.MustCompile(re).MatchString(f.Fix) {
					t.Errorf("fix for %s is %q, want it to match %q", f.Check, f.Fix, re)
				}
			}
			for check, sev := range tc.want {
				if got[check] != sev {
					t.Errorf("finding %s: %q, want %q (all: %v)", check, got[check], sev, got)
				}
			}

			// The text form says the same, with the fix under the finding.
			r = h.RunEnv(t, tc.env, args...)
			if r.Code != tc.code {
				t.Errorf("doctor: exit %d, want %d\n%s", r.Code, tc.code, r)
			}
			marks := map[string]string{"ok": "ok", "info": "info", "warning": "WARN", "error": "FAIL"}
			for check, sev := range tc.want {
				row := regexp.MustCompile(`(?m)^` + marks[sev] + `\s+` + regexp.QuoteMeta(check) + `\s`)
				if !row.MatchString(r.Stdout) {
					t.Errorf("doctor text has no %s row for %s:\n%s", marks[sev], check, r.Stdout)
				}
			}
			for check := range tc.fixes {
				if !regexp.MustCompile(`(?m)^` + marks[tc.want[check]] + `\s+` + regexp.QuoteMeta(check) + `\s.*\n\s+fix: `).MatchString(r.Stdout) {
					t.Errorf("doctor text shows no fix under %s:\n%s", check, r.Stdout)
				}
			}
		})
	}
}
