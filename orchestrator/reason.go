package orchestrator

import (
	"encoding/json"
	"fmt"
)

// ReasonCode says what a planned change is about: what differs between the
// profile and the host, or why an object goes.
type ReasonCode int

// Reason codes. The values of a Reason that each uses are in brackets.
const (
	// Networks.
	ReasonForwardAdded      ReasonCode = iota + 1 // [To: the forward mode]
	ReasonPortIsolation                           // [From, To: "true"/"false"]
	ReasonSubnet                                  // [From, To: prefix or "none"]
	ReasonDHCP                                    // [From, To]
	ReasonDNS                                     // [From, To]
	ReasonIPv6Enabled                             //
	ReasonReservations                            //
	ReasonNetworkInactive                         //
	ReasonNoAutostart                             //
	ReasonDefinitionChanged                       // networks and VMs: the spec hash differs, nothing more precise
	ReasonNotInProfile                            // VMs and networks the profile no longer declares
	ReasonFilterRules                             // a filter's rules differ; ReasonFilterRule lines follow
	ReasonFilterRule                              // [Subject: one difference, as the comparison words it]
	ReasonFilterLeftOver                          // destroy: a filter whose network is gone
	ReasonImagesUnused                            // destroy: [Subject: the image directory of a pool]
	ReasonImageNotOnHost                          // [Subject: the golden image to upload]
	ReasonOrphanAnswers                           // [Subject: the instance whose answer media is left]
	// VMs, replaced.
	ReasonUnprovisioned   //
	ReasonImageVersion    // [Subject: image, From, To: versions]
	ReasonImage           // [From, To: golden image or ISO]
	ReasonSystemDiskMoved // [From, To: paths]
	// VMs, updated in place.
	ReasonMemory            // [From, To: sizes]
	ReasonCPUs              // [From, To]
	ReasonGuestAgentAdded   //
	ReasonGuestAgentRemoved //
	ReasonNICAdded          // [Subject: MAC, To: network]
	ReasonNICRemoved        // [Subject: MAC, From: network]
	ReasonNICNetwork        // [Subject: MAC, From, To: networks]
	ReasonNICFilterRemoved  // [Subject: MAC]
	ReasonNICFilter         // [Subject: MAC, From, To: filters]
	ReasonNICFilterParams   // [Subject: MAC]
	ReasonNICModel          // [Subject: MAC, From, To: models]
	ReasonNICPortIsolation  // [Subject: MAC, From, To]
	ReasonNICIsolationOff   // [Subject: MAC]: <port isolated='no'/> added outside legacyvm
	ReasonBindingMissing    // [Subject: MAC, To: filter]
	ReasonBindingFilter     // [Subject: MAC, From, To: filters]
	ReasonBindingIP         // [Subject: MAC, From, To: addresses]
	ReasonBaselineMissing   // [Subject: snapshot, From: "running", "shut off" or "saved" (memory image saved, VM off)]
	// Doors.
	ReasonDoorListen         // [From, To]
	ReasonDoorPort           // [From, To]
	ReasonDoorFrom           // [From, To: comma-separated sources]
	ReasonDoorMaxConnections // [From, To]
	ReasonDoorTo             // [From, To]
	ReasonDoorMoved          // declared in another block (scope or protocol changed)
	ReasonDoorRemoved        //

	reasonEnd // one past the last code (tests enumerate the codes up to it)
)

// Reason is why a change is planned: a code and the values it concerns.
// Front ends word it themselves or use String, the wording of legacyvm's
// plan output. In JSON it is that wording (a string).
type Reason struct {
	Code ReasonCode
	// Subject names the part concerned (a NIC's MAC, an image, a
	// snapshot, a directory); From and To are the values as observed and
	// as the profile wants them, in the form the plan prints them.
	Subject, From, To string
}

// String words the reason as legacyvm's plan output does.
func (r Reason) String() string {
	switch r.Code {
	case ReasonForwardAdded:
		return fmt.Sprintf("has <forward mode=%q> (added outside legacyvm): guests could reach other networks", r.To)
	case ReasonPortIsolation:
		return fmt.Sprintf("port isolation %s -> %s", r.From, r.To)
	case ReasonSubnet:
		return fmt.Sprintf("subnet %s -> %s", r.From, r.To)
	case ReasonDHCP:
		return fmt.Sprintf("dhcp %s -> %s", r.From, r.To)
	case ReasonDNS:
		return fmt.Sprintf("dns %s -> %s", r.From, r.To)
	case ReasonIPv6Enabled:
		return "IPv6 enabled outside legacyvm"
	case ReasonReservations:
		return "address reservations changed"
	case ReasonNetworkInactive:
		return "not running"
	case ReasonNoAutostart:
		return "not marked autostart"
	case ReasonDefinitionChanged:
		return "definition changed"
	case ReasonNotInProfile:
		return "no longer in the profile"
	case ReasonFilterRules:
		return "rules differ from the profile (a door or allow rule changed, or the filter was changed outside legacyvm)"
	case ReasonFilterRule:
		return r.Subject
	case ReasonFilterLeftOver:
		return "left over: its network is gone"
	case ReasonImagesUnused:
		return "no managed VM uses images in " + r.Subject + " any more"
	case ReasonImageNotOnHost:
		return "golden image " + r.Subject + " is not on this host"
	case ReasonOrphanAnswers:
		return fmt.Sprintf("answer media of %s that no VM owns (left by a failed or interrupted setup); it holds a product key", r.Subject)
	case ReasonUnprovisioned:
		return "provisioning did not finish (an earlier apply was interrupted)"
	case ReasonImageVersion:
		return fmt.Sprintf("image version changed: %s v%s -> v%s", r.Subject, r.From, r.To)
	case ReasonImage:
		return fmt.Sprintf("disk image changed: %s -> %s", r.From, r.To)
	case ReasonSystemDiskMoved:
		return fmt.Sprintf("system disk moved: %s -> %s", r.From, r.To)
	case ReasonMemory:
		return fmt.Sprintf("memory %s -> %s", r.From, r.To)
	case ReasonCPUs:
		return fmt.Sprintf("cpus %s -> %s", r.From, r.To)
	case ReasonGuestAgentAdded:
		return "guest agent channel added"
	case ReasonGuestAgentRemoved:
		return "guest agent channel removed"
	case ReasonNICAdded:
		return fmt.Sprintf("network interface %s on %s added", r.Subject, r.To)
	case ReasonNICRemoved:
		return fmt.Sprintf("network interface %s on %s removed", r.Subject, r.From)
	case ReasonNICNetwork:
		return fmt.Sprintf("interface %s network %s -> %s", r.Subject, r.From, r.To)
	case ReasonNICFilterRemoved:
		return fmt.Sprintf("interface %s has no traffic filter (removed outside legacyvm): the VM is not isolated", r.Subject)
	case ReasonNICFilter:
		return fmt.Sprintf("interface %s filter %s -> %s", r.Subject, r.From, r.To)
	case ReasonNICFilterParams:
		return fmt.Sprintf("interface %s filter parameters changed", r.Subject)
	case ReasonNICModel:
		return fmt.Sprintf("interface %s model %s -> %s", r.Subject, r.From, r.To)
	case ReasonNICPortIsolation:
		return fmt.Sprintf("interface %s port isolation %s -> %s", r.Subject, r.From, r.To)
	case ReasonNICIsolationOff:
		return fmt.Sprintf("interface %s overrides the network's port isolation (<port isolated='no'/> added outside legacyvm)", r.Subject)
	case ReasonBindingMissing:
		return fmt.Sprintf("interface %s of the running VM has no traffic filter bound (removed outside legacyvm): apply binds %s again, live", r.Subject, r.To)
	case ReasonBindingFilter:
		return fmt.Sprintf("interface %s of the running VM is bound to filter %s: apply binds %s, live", r.Subject, r.From, r.To)
	case ReasonBindingIP:
		return fmt.Sprintf("interface %s of the running VM is filtered for IP %s, not %s: apply binds it again, live", r.Subject, r.From, r.To)
	case ReasonBaselineMissing:
		how := "disk only, the VM is shut off"
		switch r.From {
		case "running":
			how = "with memory, the VM runs"
		case "saved":
			how = "with the memory saved before an interruption"
		}
		return fmt.Sprintf("baseline snapshot %s is missing: apply takes it now from the VM as it is (%s)", r.Subject, how)
	case ReasonDoorListen:
		return fmt.Sprintf("listen %s -> %s", r.From, r.To)
	case ReasonDoorPort:
		return fmt.Sprintf("port %s -> %s", r.From, r.To)
	case ReasonDoorFrom:
		return fmt.Sprintf("from [%s] -> [%s]", r.From, r.To)
	case ReasonDoorMaxConnections:
		return fmt.Sprintf("max_connections %s -> %s", r.From, r.To)
	case ReasonDoorTo:
		return fmt.Sprintf("to %s -> %s", r.From, r.To)
	case ReasonDoorMoved:
		return "declared elsewhere"
	case ReasonDoorRemoved:
		return "no longer in the profile: the relay stops listening and the guard closes"
	}
	panic(fmt.Sprintf("reason code %d has no wording", int(r.Code)))
}

// MarshalJSON writes the reason as its wording (plan -o json has always
// carried reasons as strings).
func (r Reason) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// changed is a reason with its observed and desired values.
func changed[T any](code ReasonCode, from, to T) Reason {
	return Reason{Code: code, From: fmt.Sprint(from), To: fmt.Sprint(to)}
}

// reasonStrings words reasons (tests and views that print lines).
func reasonStrings(rs []Reason) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}
