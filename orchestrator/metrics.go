package orchestrator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics returns a Prometheus collector of the daemon's view: per VM
// isolation (last check), snapshot count and age of the newest snapshot,
// seconds since the last reset the daemon saw; per door the connections
// relayed, refused and active and whether it listens; the last isolation
// check's result and time and the filters it re-bound. Values are what the
// daemon last observed (every tick and check), never stale beyond that.
func (d *Daemon) Metrics() prometheus.Collector { return &daemonCollector{d: d} }

type daemonCollector struct{ d *Daemon }

var (
	mIsolated = prometheus.NewDesc("legacyvm_vm_isolated",
		"1 when every isolation check of the VM passed at the daemon's last verify, else 0.", []string{"vm", "profile"}, nil)
	mSnapshots = prometheus.NewDesc("legacyvm_vm_snapshots",
		"Number of snapshots the VM has.", []string{"vm", "profile"}, nil)
	mNewest = prometheus.NewDesc("legacyvm_vm_newest_snapshot_age_seconds",
		"Age of the VM's newest snapshot (absent without snapshots).", []string{"vm", "profile"}, nil)
	mSinceReset = prometheus.NewDesc("legacyvm_vm_seconds_since_reset",
		"Seconds since the VM was last reverted to a snapshot, as seen by this daemon (absent until it sees one).", []string{"vm"}, nil)
	mDoorAccepted = prometheus.NewDesc("legacyvm_door_connections_total",
		"Connections the relay carried through the door.", []string{"door", "kind", "vm", "network"}, nil)
	mDoorRefused = prometheus.NewDesc("legacyvm_door_connections_refused_total",
		"Clients the relay closed at once (not in from, max_connections reached, target unreachable).", []string{"door", "kind", "vm", "network"}, nil)
	mDoorActive = prometheus.NewDesc("legacyvm_door_connections_active",
		"Connections open through the door now.", []string{"door", "kind", "vm", "network"}, nil)
	mDoorListening = prometheus.NewDesc("legacyvm_door_listening",
		"1 when the door's relay listens, else 0.", []string{"door", "kind", "vm", "network"}, nil)
	mVerifyOK = prometheus.NewDesc("legacyvm_verify_last_ok",
		"1 when the daemon's last isolation check passed, else 0.", nil, nil)
	mVerifyTime = prometheus.NewDesc("legacyvm_verify_last_timestamp_seconds",
		"Unix time of the daemon's last isolation check.", nil, nil)
	mRepairs = prometheus.NewDesc("legacyvm_verify_repairs_total",
		"Traffic filters the daemon bound again, live.", nil, nil)
)

func (c *daemonCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mIsolated, mSnapshots, mNewest, mSinceReset, mDoorAccepted, mDoorRefused, mDoorActive, mDoorListening, mVerifyOK, mVerifyTime, mRepairs} {
		ch <- d
	}
}

func (c *daemonCollector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	now := time.Now()
	st := d.State()
	d.mu.Lock()
	stats := make(map[string]vmStat, len(d.vmStats))
	for k, v := range d.vmStats {
		stats[k] = v
	}
	resets := make(map[string]time.Time, len(d.resets))
	for k, v := range d.resets {
		resets[k] = v
	}
	repairs := d.repairs
	d.mu.Unlock()

	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	for vm, s := range stats {
		ch <- prometheus.MustNewConstMetric(mSnapshots, prometheus.GaugeValue, float64(s.snapshots), vm, s.profile)
		if !s.newest.IsZero() {
			ch <- prometheus.MustNewConstMetric(mNewest, prometheus.GaugeValue, now.Sub(s.newest).Seconds(), vm, s.profile)
		}
		if st.LastVerify != nil {
			if ok, found := st.LastVerify.Isolated[vm]; found {
				ch <- prometheus.MustNewConstMetric(mIsolated, prometheus.GaugeValue, b2f(ok), vm, s.profile)
			}
		}
	}
	for vm, at := range resets {
		ch <- prometheus.MustNewConstMetric(mSinceReset, prometheus.GaugeValue, now.Sub(at).Seconds(), vm)
	}
	for _, door := range st.Doors {
		l := []string{door.Key, door.Kind, door.VM, door.Network}
		ch <- prometheus.MustNewConstMetric(mDoorAccepted, prometheus.CounterValue, float64(door.Accepted), l...)
		ch <- prometheus.MustNewConstMetric(mDoorRefused, prometheus.CounterValue, float64(door.Refused), l...)
		ch <- prometheus.MustNewConstMetric(mDoorActive, prometheus.GaugeValue, float64(door.Active), l...)
		ch <- prometheus.MustNewConstMetric(mDoorListening, prometheus.GaugeValue, b2f(door.Listening), l...)
	}
	if v := st.LastVerify; v != nil {
		ch <- prometheus.MustNewConstMetric(mVerifyOK, prometheus.GaugeValue, b2f(v.OK))
		ch <- prometheus.MustNewConstMetric(mVerifyTime, prometheus.GaugeValue, float64(v.At.UnixNano())/1e9)
	}
	ch <- prometheus.MustNewConstMetric(mRepairs, prometheus.CounterValue, float64(repairs))
}
