package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/legacyvm/legacyvm/internal/daemonstate"
	"github.com/legacyvm/legacyvm/internal/event"
	"github.com/legacyvm/legacyvm/internal/hostcheck"
	"github.com/legacyvm/legacyvm/internal/virt"
	"github.com/legacyvm/legacyvm/internal/virt/domainxml"
	"github.com/legacyvm/legacyvm/profiles"
)

// CheckStatus is the outcome of one verify check.
type CheckStatus string

const (
	// CheckPass: the property holds.
	CheckPass CheckStatus = "pass"
	// CheckFail: isolation is broken or will be at the next start.
	CheckFail CheckStatus = "fail"
	// CheckWarn: isolation holds, but something needs attention.
	CheckWarn CheckStatus = "warn"
	// CheckSkip: the property cannot be checked here (the VM is not
	// running, no profile to compare with, the host cannot tell).
	CheckSkip CheckStatus = "skip"
)

// Names of the per-VM checks verify runs, in the order it reports them.
const (
	checkNetwork       = "network"          // the NIC is on an active legacyvm network
	checkNoForward     = "no-forward"       // the network has no <forward>, defined or running
	checkNoIPv6        = "no-ipv6"          // the network has no IPv6
	checkDNS           = "dns"              // DNS is on exactly when the profile says
	checkPortIsolation = "port-isolation"   // guests are isolated exactly when the profile says
	checkFilterRef     = "filter-reference" // the definition references the network's filter with the VM's IP
	checkFilterBinding = "filter-binding"   // the running NIC has that filter bound
	checkFilterRules   = "filter-rules"     // the filters' rules are the ones the profile renders to
	checkNoUplink      = "no-uplink"        // nothing but VM NICs is enslaved to the bridge
	checkExists        = "exists"           // a VM the profile declares exists
	checkGuestAgent    = "guest-agent"      // a VM with the agent channel has an agent that answers (VerifyOptions.Agent)
)

// CheckResult is one check of one VM: what was checked, the outcome, why,
// and how to repair a failure.
type CheckResult struct {
	Check  string      `json:"check"`
	Status CheckStatus `json:"status"`
	Reason string      `json:"reason"`
	Fix    string      `json:"fix,omitempty"`
	// Hint names the operation that repairs the problem (event.HintApply:
	// applying the profile); front ends word it (the CLI as a command).
	Hint event.Hint `json:"hint,omitempty"`
}

// VMVerification is what verify found for one managed VM.
type VMVerification struct {
	Name    string           `json:"name"`
	Profile string           `json:"profile"`
	State   virt.DomainState `json:"state,omitempty"`
	Network string           `json:"network,omitempty"`
	// OK is false when a check failed.
	OK     bool          `json:"ok"`
	Checks []CheckResult `json:"checks"`
}

// Verification is the result of verifying one host: every managed VM (of
// one profile, or of all), and the host conditions that weaken isolation.
type Verification struct {
	Host string `json:"host"`
	// Profile is "" when every profile's VMs were verified.
	Profile string           `json:"profile,omitempty"`
	VMs     []VMVerification `json:"vms"`
	// HostChecks are the local system's findings (see SystemFindings);
	// for a remote host, one note saying where to run them.
	HostChecks []hostcheck.Finding `json:"host_checks"`
	// OK is false when a VM check failed or a host finding is an error.
	OK bool `json:"ok"`
	// Error is set when the host could not be verified at all (it did not
	// answer); VMs is then empty and OK false.
	Error string `json:"error,omitempty"`
	// HostName is the profile's name for the host (host block).
	HostName string `json:"host_name,omitempty"`
}

// Warnings reports whether a VM check or a host finding is a warning.
func (v *Verification) Warnings() bool {
	for _, vm := range v.VMs {
		for _, c := range vm.Checks {
			if c.Status == CheckWarn {
				return true
			}
		}
	}
	for _, f := range v.HostChecks {
		if f.Severity == hostcheck.SeverityWarn {
			return true
		}
	}
	return false
}

// VerifyOptions are the inputs of Verify.
type VerifyOptions struct {
	// URI is the host's libvirt URI (for the report, and to decide whether
	// the local system is the libvirt host).
	URI string
	// Profile, when set, is the part of a profile placed on this host (see
	// Split): only its VMs are verified, and against what it declares.
	// nil verifies every VM legacyvm manages on the host, with the checks
	// that need no profile.
	Profile *profiles.Profile
	// System is the local system, read for host conditions when URI is
	// local.
	System hostcheck.System
	// SerialLogDir is passed to Desired (it does not change any check).
	SerialLogDir string
	// Agent adds the guest-agent check: a running VM whose definition has
	// the guest agent channel must answer a guest-ping (a warning
	// otherwise: isolation holds, but exec, cp and test will not work).
	// apply leaves it out (a guest it has just started has no agent yet).
	Agent bool
	// DaemonState returns legacyvm daemon's state (its relay's doors) for
	// the door checks; nil: no daemon.
	DaemonState func() (*daemonstate.State, error)
}

// verifyProfile verifies every host a profile uses: it connects to each,
// runs Verify with the part of the profile placed there and closes the
// connection. Reports are in host order (see Split). Placed instances are
// looked up where they run (see place). With several hosts, a host that
// cannot be reached gets a Verification with Error (partial) instead of
// stopping the others.
func verifyProfile(ctx context.Context, p *profiles.Profile, connect Connector, opts Options, vo VerifyOptions) ([]*Verification, error) {
	var out []*Verification
	conns := connectHosts(ctx, p, connect, opts)
	defer closeConns(conns)
	observeDomains(ctx, conns)
	place(p, conns)
	byHost := map[*profiles.Host]*hostConn{}
	for _, c := range conns {
		byHost[c.Host] = c
	}
	parts := split(p)
	for _, part := range parts {
		c := byHost[part.Hosts[0]]
		if c.Err != nil {
			if len(parts) == 1 {
				return out, c.Err
			}
			out = append(out, &Verification{Host: c.URI, HostName: c.Host.Name, Profile: p.Name, VMs: []VMVerification{}, Error: c.Err.Error()})
			continue
		}
		o := vo
		o.URI, o.Profile, o.SerialLogDir = c.URI, part, opts.SerialLogDir
		v, err := verifyHost(ctx, c.HV, o)
		if err != nil {
			if len(parts) == 1 {
				return out, err
			}
			out = append(out, &Verification{Host: c.URI, HostName: c.Host.Name, Profile: p.Name, VMs: []VMVerification{}, Error: err.Error()})
			continue
		}
		v.HostName = c.Host.Name
		out = append(out, v)
	}
	return out, nil
}

// verifyHost proves from the outside that the managed VMs on hv are isolated:
// for each VM and each of its NICs, that the network has no forwarding and
// no IPv6 and the DNS and port isolation declared, that the definition
// references the network's traffic filter with the VM's address, that the
// filter is bound to the running NIC, that the filters' rules are what
// the profile renders to (FilterDiff), and that nothing but VM NICs is
// enslaved to the bridge; plus, for a local URI, the host conditions that
// undo isolation (SystemFindings). It boots nothing and makes a few
// libvirt calls per network. The error is for failures to read the host;
// what verify finds is in the report.
func verifyHost(ctx context.Context, hv virt.Hypervisor, opts VerifyOptions) (*Verification, error) {
	v := &Verification{Host: opts.URI, VMs: []VMVerification{}}
	var profile string
	if opts.Profile != nil {
		profile = opts.Profile.Name
		v.Profile = profile
	}
	doms, err := hv.ListDomains(ctx)
	if err != nil {
		return nil, err
	}
	nets, err := hv.ListNetworks(ctx)
	if err != nil {
		return nil, err
	}
	vr := &verifier{hv: hv, opts: opts, nets: map[string]virt.Network{}, ports: map[string]portsResult{},
		diffs: map[string][]string{}, desiredNets: map[string]*desiredNetwork{}, desiredVMs: map[string]*desiredVM{}}
	for _, n := range nets {
		vr.nets[n.Name] = n
	}
	if opts.Profile != nil {
		o := &observation{Networks: vr.nets}
		ds, err := desiredFor(opts.Profile, hostTarget{URI: opts.URI, SerialLogDir: opts.SerialLogDir}, o)
		if err != nil {
			return nil, err
		}
		for _, dn := range ds.Networks {
			vr.desiredNets[dn.Spec.Name] = dn
		}
		for _, dv := range ds.VMs {
			vr.desiredVMs[dv.Spec.Name] = dv
		}
	}

	var managed []virt.Domain
	running := false
	seen := map[string]bool{}
	for _, d := range doms {
		if d.Metadata == nil || d.Metadata.ImageBuild != "" || (profile != "" && d.Metadata.Profile != profile) {
			continue
		}
		managed = append(managed, d)
		seen[d.Name] = true
		running = running || d.State != virt.StateShutoff
	}
	if running {
		if vr.bindings, err = hv.FilterBindings(ctx); err != nil {
			return nil, err
		}
	}
	if opts.Profile == nil && len(managed) > 0 {
		fs, err := hv.ListFilters(ctx)
		if err != nil {
			return nil, err
		}
		vr.filters = map[string]virt.Filter{}
		for _, f := range fs {
			vr.filters[f.Name] = f
		}
	}
	for _, d := range managed {
		vm, err := vr.verifyVM(ctx, d)
		if err != nil {
			return nil, err
		}
		v.VMs = append(v.VMs, vm)
	}
	for _, name := range sortedKeys(vr.desiredVMs) {
		if seen[name] {
			continue
		}
		v.VMs = append(v.VMs, VMVerification{Name: name, Profile: profile, OK: true, Checks: []CheckResult{{
			Check: checkExists, Status: CheckWarn,
			Reason: "the profile declares this VM but it does not exist on the host",
			Fix:    "applying the profile creates it",
			Hint:   event.HintApply,
		}}})
	}
	sort.SliceStable(v.VMs, func(i, j int) bool {
		if v.VMs[i].Profile != v.VMs[j].Profile {
			return v.VMs[i].Profile < v.VMs[j].Profile
		}
		return v.VMs[i].Name < v.VMs[j].Name
	})

	if isLocalURI(opts.URI) {
		v.HostChecks = hostcheck.Findings(ctx, opts.System)
	} else {
		v.HostChecks = []hostcheck.Finding{{Check: "host system", Severity: hostcheck.SeverityInfo,
			Message: "the libvirt host is remote: its firewall and sysctl settings are checked only on the host itself", Hint: event.HintVerifyOnHost}}
	}
	var pools []string
	for _, dv := range vr.desiredVMs {
		pools = append(pools, dv.System.Pool)
	}
	leftovers, err := verifyAnswerMedia(ctx, hv, doms, pools...)
	if err != nil {
		return nil, err
	}
	v.HostChecks = append(v.HostChecks, leftovers...)
	v.OK = true
	for _, vm := range v.VMs {
		v.OK = v.OK && vm.OK
	}
	for _, f := range v.HostChecks {
		v.OK = v.OK && f.Severity != hostcheck.SeverityFail
	}
	return v, nil
}

type portsResult struct {
	ports []virt.BridgePort
	err   error
}

// onHostFix is the fix of a check only the libvirt host itself can run.
const onHostFix = "verify on the libvirt host itself"

// fixHint is the hint a check result with this fix carries: applying the
// profile (event.HintApply), verifying on the host (HintVerifyOnHost).
func fixHint(fix string) event.Hint {
	switch {
	case fix == onHostFix:
		return event.HintVerifyOnHost
	case strings.Contains(fix, "apply the profile") || strings.Contains(fix, "applying the profile"):
		return event.HintApply
	}
	return event.HintNone
}

// verifier holds what one Verify call observed, shared by its VMs.
type verifier struct {
	hv          virt.Hypervisor
	opts        VerifyOptions
	nets        map[string]virt.Network
	bindings    []virt.FilterBinding
	filters     map[string]virt.Filter // without a profile only
	diffs       map[string][]string    // FilterDiff per desired filter, on first use
	ports       map[string]portsResult // BridgePorts per bridge, on first use
	desiredNets map[string]*desiredNetwork
	desiredVMs  map[string]*desiredVM
	// The daemon's state, read on first use (door checks).
	stateRead bool
	state     *daemonstate.State
	stateErr  error
}

func (vr *verifier) verifyVM(ctx context.Context, d virt.Domain) (VMVerification, error) {
	vm := VMVerification{Name: d.Name, Profile: d.Metadata.Profile, State: d.State}
	add := func(check string, st CheckStatus, fix, format string, a ...any) {
		vm.Checks = append(vm.Checks, CheckResult{Check: check, Status: st, Reason: fmt.Sprintf(format, a...), Fix: fix, Hint: fixHint(fix)})
	}
	dv := vr.desiredVMs[d.Name]
	var want []virt.InterfaceSpec
	if dv != nil {
		want = dv.Spec.Interfaces
	}
	if len(d.Interfaces) == 0 {
		if len(want) > 0 {
			add(checkNetwork, CheckWarn, "applying the profile puts it back",
				"the VM has no network interface although the profile puts it on %s", want[0].Network)
		} else {
			add(checkNetwork, CheckPass, "", "the VM has no network interface: nothing to isolate")
		}
	}
	for i, nic := range d.Interfaces {
		if i == 0 {
			vm.Network = nic.Network
		}
		var w *virt.InterfaceSpec
		for j := range want {
			if strings.EqualFold(want[j].MAC, nic.MAC) {
				w = &want[j]
			}
		}
		if err := vr.verifyNIC(ctx, d, nic, w, add); err != nil {
			return vm, err
		}
	}
	if vr.opts.Agent {
		vr.checkAgent(ctx, d, add)
	}
	vm.OK = true
	for _, c := range vm.Checks {
		vm.OK = vm.OK && c.Status != CheckFail
	}
	return vm, nil
}

// verifyNIC checks one interface of d; want is the interface the profile
// declares (nil without a profile, or when the profile has none with this
// MAC).
func (vr *verifier) verifyNIC(ctx context.Context, d virt.Domain, nic virt.InterfaceSpec, want *virt.InterfaceSpec, add func(check string, st CheckStatus, fix, format string, a ...any)) error {
	multi := len(d.Interfaces) > 1
	label := func(s string) string {
		if multi {
			return "interface " + nic.MAC + ": " + s
		}
		return s
	}
	apply := "applying the profile repairs it"
	n, ok := vr.nets[nic.Network]
	switch {
	case !ok:
		add(checkNetwork, CheckFail, apply, label("network %s does not exist"), nic.Network)
		return nil
	case n.Metadata == nil || !isOwnedName(n.Name):
		add(checkNetwork, CheckFail, "move the interface back to its legacyvm network (apply the profile) or remove it (virsh edit "+d.Name+")",
			label("network %s is not managed by legacyvm: nothing isolates this interface"), nic.Network)
		return nil
	case want != nil && want.Network != nic.Network:
		add(checkNetwork, CheckFail, apply, label("the interface is on %s, the profile puts it on %s"), nic.Network, want.Network)
	case !n.Active:
		add(checkNetwork, CheckWarn, "virsh net-start "+n.Name+" (or apply the profile)", label("network %s is not running"), n.Name)
	case n.Running != nil && reservedIP(n, nic.MAC).IsValid() && !reservedIP(*n.Running, nic.MAC).IsValid():
		add(checkNetwork, CheckWarn, "stop the network's VMs and apply the profile to restart it",
			label("network %s runs with an older definition that lacks this VM's address reservation: the VM gets another address, which its filter drops (no network until the network restarts)"), n.Name)
	case n.Running != nil:
		add(checkNetwork, CheckWarn, "stop the network's VMs and apply the profile to restart it",
			label("network %s runs with an older definition (a change waits for the network to restart); the checks below read both"), n.Name)
	default:
		add(checkNetwork, CheckPass, "", label("on %s, legacyvm's network of profile %s"), n.Name, n.Metadata.Profile)
	}
	dn := vr.desiredNets[n.Name]

	// Forwarding and IPv6, defined and running.
	var fwd []string
	if n.ForwardMode != "" {
		fwd = append(fwd, fmt.Sprintf("the definition has <forward mode='%s'>", n.ForwardMode))
	}
	if r := n.Running; r != nil && r.ForwardMode != "" {
		fwd = append(fwd, fmt.Sprintf("the running network forwards (mode %s)", r.ForwardMode))
	}
	if len(fwd) > 0 {
		fix := "applying the profile removes it from the definition"
		if n.Running != nil && n.Running.ForwardMode != "" {
			fix += "; the running network keeps forwarding until it restarts: stop its VMs and apply again"
		}
		add(checkNoForward, CheckFail, fix, label("%s: libvirt routes the guests' traffic off the bridge (added outside legacyvm?)"), strings.Join(fwd, "; "))
	} else {
		add(checkNoForward, CheckPass, "", label("%s has no <forward>: libvirt routes nothing off the bridge"), n.Name)
	}
	if n.IPv6 || n.Running != nil && n.Running.IPv6 {
		add(checkNoIPv6, CheckFail, apply, label("%s has IPv6 (added outside legacyvm): IPv6 bypasses the IPv4 host guard"), n.Name)
	} else {
		add(checkNoIPv6, CheckPass, "", label("no IPv6 on %s"), n.Name)
	}

	// DNS and port isolation, as declared.
	onOff := map[bool]string{true: "on", false: "off"}
	switch {
	case dn == nil:
		add(checkDNS, CheckSkip, "", label("DNS is %s; not compared (no profile: run legacyvm verify PATH)"), onOff[n.DNS])
	case n.DNS != dn.Spec.DNS || n.Running != nil && n.Running.DNS != dn.Spec.DNS:
		add(checkDNS, CheckFail, apply, label("DNS is %s on %s, the profile says %s"), onOff[!dn.Spec.DNS], n.Name, onOff[dn.Spec.DNS])
	default:
		add(checkDNS, CheckPass, "", label("DNS is %s, as declared"), onOff[dn.Spec.DNS])
	}
	override := interfacePortOverride(d.XML, nic.MAC)
	switch {
	case n.PortIsolated && override == "no":
		add(checkPortIsolation, CheckFail, "remove <port isolated='no'/> from the interface (virsh edit "+d.Name+") and restart the VM",
			label("the interface overrides the network's port isolation (<port isolated='no'/>): the VM reaches the other guests"))
	case dn == nil:
		add(checkPortIsolation, CheckSkip, "", label("guests are %s; not compared (no profile)"), map[bool]string{true: "isolated from each other", false: "allowed to talk to each other"}[n.PortIsolated])
	case n.PortIsolated != dn.Spec.PortIsolated || n.Running != nil && n.Running.PortIsolated != dn.Spec.PortIsolated:
		add(checkPortIsolation, CheckFail, apply, label("port isolation is %s on %s, the profile says %s (guest_to_guest = %v)"),
			onOff[!dn.Spec.PortIsolated], n.Name, onOff[dn.Spec.PortIsolated], !dn.Spec.PortIsolated)
	case dn.Spec.PortIsolated:
		add(checkPortIsolation, CheckPass, "", label("guests are isolated from each other (guest_to_guest = false)"))
	default:
		add(checkPortIsolation, CheckPass, "", label("guests may talk to each other (guest_to_guest = true), as declared"))
	}

	// The filter reference in the definition.
	wantFilter, wantIP := n.Name, reservedIP(n, nic.MAC)
	if dn != nil {
		wantFilter = dn.Filter.Name
	}
	if want != nil {
		wantFilter, wantIP = want.Filter, paramIP(want.FilterParams)
	}
	switch got := paramIP(nic.FilterParams); {
	case nic.Filter == "":
		add(checkFilterRef, CheckFail, "applying the profile repairs the definition (until then, the VM starts unfiltered)",
			label("the definition has no traffic filter (removed outside legacyvm?): started like this, the VM reaches the host and spoofs addresses"))
	case nic.Filter != wantFilter:
		add(checkFilterRef, CheckFail, apply, label("the definition references filter %s, not %s"), nic.Filter, wantFilter)
	case wantIP.IsValid() && got != wantIP:
		add(checkFilterRef, CheckFail, apply, label("the filter's IP parameter is %s, the VM's address is %s"), addrStr(got), wantIP)
	default:
		add(checkFilterRef, CheckPass, "", label("references %s%s"), nic.Filter, ipSuffix(got))
	}

	// The binding of the running NIC.
	if d.State == virt.StateShutoff {
		add(checkFilterBinding, CheckSkip, "", label("not running: nothing is bound (the definition is checked above)"))
	} else {
		var b *virt.FilterBinding
		for i := range vr.bindings {
			if strings.EqualFold(vr.bindings[i].MAC, nic.MAC) && vr.bindings[i].Owner == d.Name {
				b = &vr.bindings[i]
			}
		}
		restart := "applying the profile binds it again on the running interface, without a restart (the daemon does it at its next verify)"
		switch {
		case b == nil:
			add(checkFilterBinding, CheckFail, restart, label("the running interface has no traffic filter bound: its traffic is not filtered now"))
		case b.Filter != wantFilter:
			add(checkFilterBinding, CheckFail, restart, label("%s is bound to filter %s, not %s"), b.PortDev, b.Filter, wantFilter)
		case wantIP.IsValid() && paramIP(b.Params) != wantIP:
			add(checkFilterBinding, CheckFail, restart, label("%s is bound to %s with IP %s, the VM's address is %s"), b.PortDev, b.Filter, addrStr(paramIP(b.Params)), wantIP)
		default:
			add(checkFilterBinding, CheckPass, "", label("%s is bound to %s%s"), b.PortDev, b.Filter, ipSuffix(paramIP(b.Params)))
		}
	}

	// The filters' rules.
	if dn != nil {
		diffs, err := vr.filterDiff(ctx, dn)
		if err != nil {
			return err
		}
		if len(diffs) > 0 {
			add(checkFilterRules, CheckFail, apply, label("filter %s differs from the profile (changed outside legacyvm?): %s"), dn.Filter.Name, strings.Join(diffs, "; "))
		} else {
			add(checkFilterRules, CheckPass, "", label("%s and %s hold the rules the profile renders to"), dn.Filter.Name, dn.Filter.Name+"-guard")
		}
	} else if problem := vr.filterShape(wantFilter); problem != "" {
		add(checkFilterRules, CheckFail, apply, label("%s"), problem)
	} else {
		add(checkFilterRules, CheckSkip, "", label("%s references %s-guard; the rules are compared only with the profile (legacyvm verify PATH)"), wantFilter, wantFilter)
	}

	// The bridge's other ports.
	vr.checkUplink(ctx, n, label, add)
	if d.Metadata != nil && len(d.Metadata.Doors) > 0 {
		vr.checkDoors(ctx, d, n, label, add)
	}
	return nil
}

func (vr *verifier) filterDiff(ctx context.Context, dn *desiredNetwork) ([]string, error) {
	if d, ok := vr.diffs[dn.Filter.Name]; ok {
		return d, nil
	}
	d, err := vr.hv.FilterDiff(ctx, dn.Filter)
	if err != nil {
		return nil, err
	}
	vr.diffs[dn.Filter.Name] = d
	return d, nil
}

// filterShape checks, without a profile, that the root filter references
// the guard (whose rules it merges into the root chain), that the guard
// exists, and that the root filter is not the earlier layout that
// referenced clean-traffic (apply redefines it); "" when all holds.
func (vr *verifier) filterShape(root string) string {
	f, ok := vr.filters[root]
	if !ok {
		return fmt.Sprintf("filter %s does not exist: the VM cannot start", root)
	}
	guard := root + "-guard"
	if !slices.Contains(f.Refs, guard) {
		return fmt.Sprintf("filter %s does not reference %s (changed outside legacyvm?)", root, guard)
	}
	if slices.Contains(f.Refs, "clean-traffic") {
		return fmt.Sprintf("filter %s references clean-traffic: an earlier legacyvm's layout (one ebtables sub-chain per rule group), which apply redefines", root)
	}
	if _, ok := vr.filters[guard]; !ok {
		return fmt.Sprintf("filter %s does not exist", guard)
	}
	return ""
}

// checkUplink proves that nothing but VM NICs is enslaved to the bridge,
// through libvirt, or from /sys on a local host whose libvirt cannot tell.
func (vr *verifier) checkUplink(ctx context.Context, n virt.Network, label func(string) string, add func(check string, st CheckStatus, fix, format string, a ...any)) {
	if n.Bridge == "" || !n.Active {
		add(checkNoUplink, CheckSkip, "", label("network %s is not running: no bridge to check"), n.Name)
		return
	}
	r, ok := vr.ports[n.Bridge]
	if !ok {
		r.ports, r.err = vr.hv.BridgePorts(ctx, n.Bridge)
		if errors.Is(r.err, virt.ErrUnsupported) && isLocalURI(vr.opts.URI) {
			r.ports, r.err = vr.opts.System.BridgePorts(ctx, n.Bridge)
		}
		vr.ports[n.Bridge] = r
	}
	switch {
	case r.err != nil:
		add(checkNoUplink, CheckSkip, "", label("cannot list the ports of bridge %s: %v"), n.Bridge, r.err)
	case len(r.ports) > 0:
		var names []string
		for _, p := range r.ports {
			s := p.Name
			if p.MAC != "" {
				s += " (" + p.MAC + ")"
			}
			names = append(names, s)
		}
		add(checkNoUplink, CheckFail, fmt.Sprintf("on the libvirt host: ip link set %s nomaster", r.ports[0].Name),
			label("bridge %s has an uplink: %s is enslaved to it, so traffic can leave the isolated network"), n.Bridge, strings.Join(names, ", "))
	default:
		add(checkNoUplink, CheckPass, "", label("bridge %s holds only VM interfaces"), n.Bridge)
	}
}

// interfacePortOverride returns the isolated attribute of the <port>
// element of the NIC with mac ("" when absent; see
// domainxml.InterfacePortIsolated).
func interfacePortOverride(domainXML, mac string) string {
	return domainxml.InterfacePortIsolated(domainXML, mac)
}

func paramIP(ps []virt.FilterParam) netip.Addr {
	for _, p := range ps {
		if p.Name == "IP" {
			a, _ := netip.ParseAddr(p.Value)
			return a
		}
	}
	return netip.Addr{}
}

func addrStr(a netip.Addr) string {
	if !a.IsValid() {
		return "unset"
	}
	return a.String()
}

func ipSuffix(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return " with IP " + a.String()
}
