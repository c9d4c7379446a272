package orchestrator

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/relay"
)

// The collector reports what the daemon last saw: per VM isolation,
// snapshots, newest snapshot age and time since the last reset; per door
// its counters; the last check.
func TestDaemonMetrics(t *testing.T) {
	now := time.Now()
	d := &Daemon{Relay: relay.New(nil)}
	t.Cleanup(d.Relay.Close)
	d.Relay.Sync([]relay.Door{{Key: "publish/app/rdp", Kind: "publish", VM: "app", Network: "lvm-lab", Listen: "127.0.0.1:0",
		From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, Target: "127.0.0.1:9"}})
	d.vmStats = map[string]vmStat{"app": {profile: "lab", snapshots: 3, newest: now.Add(-90 * time.Second)}}
	d.noteReset("app", now.Add(-30*time.Second))
	d.lastVerify = &daemonstate.VerifySummary{At: now, OK: true, Isolated: map[string]bool{"app": true}}
	d.repairs = 2
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.Metrics())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[f.GetName()] = v
		}
	}
	checks := map[string]func(float64) bool{
		"legacyvm_vm_isolated":                    func(v float64) bool { return v == 1 },
		"legacyvm_vm_snapshots":                   func(v float64) bool { return v == 3 },
		"legacyvm_vm_newest_snapshot_age_seconds": func(v float64) bool { return v >= 90 && v < 120 },
		"legacyvm_vm_seconds_since_reset":         func(v float64) bool { return v >= 30 && v < 60 },
		"legacyvm_door_connections_total":         func(v float64) bool { return v == 0 },
		"legacyvm_door_connections_refused_total": func(v float64) bool { return v == 0 },
		"legacyvm_door_connections_active":        func(v float64) bool { return v == 0 },
		"legacyvm_door_listening":                 func(v float64) bool { return v == 1 },
		"legacyvm_verify_last_ok":                 func(v float64) bool { return v == 1 },
		"legacyvm_verify_last_timestamp_seconds":  func(v float64) bool { return int64(v) == now.Unix() },
		"legacyvm_verify_repairs_total":           func(v float64) bool { return v == 2 },
	}
	for name, ok := range checks {
		v, present := got[name]
		if !present || !ok(v) {
			t.Errorf("%s = %v (present %v)", name, v, present)
		}
	}
}
