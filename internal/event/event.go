// Package event is the vocabulary the engine reports its work in: typed
// steps on named objects, with timing and errors, that every front end
// renders its own way (the CLI's plain lines, its terminal board, JSON
// lines; the web console's server-sent events). The engine never writes
// user-interface text such as CLI command lines into an event: a Hint
// names what the user can do and each front end words it.
//
// Terraform's terraform/hook.go is the model: the engine calls a Hook, the
// front end decides what to show. Unlike terraform's, a Hook here receives
// one value type, so that adding a step never changes an interface.
package event

import (
	"encoding/json"
	"sync"
	"time"
)

// Kind is the kind of object an event is about.
type Kind string

const (
	KindVM      Kind = "vm"
	KindNetwork Kind = "network"
	KindPool    Kind = "pool"
	KindImage   Kind = "image"
	KindDoor    Kind = "door"
	KindHost    Kind = "host"
	KindMedia   Kind = "media" // answer media, ISOs
	KindFilter  Kind = "filter"
	KindVolume  Kind = "volume"
)

// Step is what the engine is doing to the object.
type Step string

const (
	StepPlan      Step = "plan"
	StepConnect   Step = "connect"
	StepPool      Step = "pool"      // create or remove a storage pool
	StepNetwork   Step = "network"   // create, update or delete a network
	StepFilter    Step = "filter"    // traffic filters: define, bind, delete
	StepDefine    Step = "define"    // define or update a domain definition
	StepDisk      Step = "disk"      // create, clone or copy a volume
	StepUpload    Step = "upload"    // upload media or an image
	StepChecksum  Step = "checksum"  // SHA-256 of an upload or ISO
	StepSetup     Step = "setup"     // Windows setup / specialize pass
	StepSettle    Step = "settle"    // let the guest settle before a memory snapshot
	StepBaseline  Step = "baseline"  // take the baseline snapshot
	StepSnapshot  Step = "snapshot"  // take or delete another snapshot
	StepStart     Step = "start"     // start a domain
	StepStop      Step = "stop"      // graceful shutdown or power off
	StepRevert    Step = "revert"    // revert / reset to a snapshot
	StepDelete    Step = "delete"    // delete a domain, volume or other object
	StepCleanup   Step = "cleanup"   // remove what a killed run left behind
	StepRollback  Step = "rollback"  // undo a failed create
	StepDoors     Step = "doors"     // record or serve doors
	StepBuild     Step = "build"     // golden image build phases
	StepVerify    Step = "verify"    // isolation checks
	StepExec      Step = "exec"      // guest agent command
	StepCopy      Step = "copy"      // guest agent file copy
	StepTest      Step = "test"      // test runs
	StepWait      Step = "wait"      // waiting for a state
	StepOperation Step = "operation" // the whole operation on the object (its final Done/Failed)
)

// Phase says where the step is.
type Phase string

const (
	Begin    Phase = "begin"    // the step started
	Progress Phase = "progress" // the step goes on (Message, Done/Total say how far)
	Done     Phase = "done"     // the step finished
	Failed   Phase = "failed"   // the step failed (Err)
	Note     Phase = "note"     // something worth knowing that is not a step
)

// Hint names something the user can do next; front ends word it (the CLI
// as a command line, the web console as a button or sentence).
type Hint string

const (
	HintNone         Hint = ""
	HintApply        Hint = "apply"          // apply the profile (repairs drift, replaces)
	HintDestroy      Hint = "destroy"        // destroy the profile
	HintRestart      Hint = "restart"        // stop and start the VM for a change to take effect
	HintReset        Hint = "reset"          // reset the VM to its baseline
	HintImageBuild   Hint = "image-build"    // build the golden image
	HintVerifyOnHost Hint = "verify-on-host" // run verify on the remote libvirt host itself
)

// Event is one report from the engine.
type Event struct {
	Time    time.Time     `json:"time"`
	Host    string        `json:"host,omitempty"` // libvirt URI ("" = the only host)
	Kind    Kind          `json:"kind"`
	Object  string        `json:"object"` // the VM's name for KindVM, else the object's name
	Step    Step          `json:"step"`
	Phase   Phase         `json:"phase"`
	Message string        `json:"message,omitempty"` // a human sentence without CLI syntax
	Elapsed time.Duration `json:"-"`                 // time since the step (or operation) began
	Err     error         `json:"-"`
	// Current and Total measure progress in bytes (0 = not measured).
	Current int64 `json:"current,omitempty"`
	Total   int64 `json:"total,omitempty"`
	Hint    Hint  `json:"hint,omitempty"`
}

// Finished reports whether the event ends the work on its object (the
// terminal board stops the object's clock on it).
func (e Event) Finished() bool {
	return e.Step == StepOperation && (e.Phase == Done || e.Phase == Failed)
}

// MarshalJSON adds elapsed_ms and error, which the struct tags leave out.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	out := struct {
		plain
		ElapsedMS *float64 `json:"elapsed_ms,omitempty"`
		Error     string   `json:"error,omitempty"`
	}{plain: plain(e)}
	if e.Elapsed > 0 {
		ms := float64(e.Elapsed.Microseconds()) / 1000
		out.ElapsedMS = &ms
	}
	if e.Err != nil {
		out.Error = e.Err.Error()
	}
	return json.Marshal(out)
}

// Hook receives events. It must be safe for concurrent use: the engine
// works on several VMs at once.
type Hook interface {
	Event(Event)
}

// Func adapts a function to a Hook.
type Func func(Event)

func (f Func) Event(e Event) { f(e) }

// Discard is a Hook that drops everything.
var Discard Hook = Func(func(Event) {})

// Multi sends every event to each hook in turn.
func Multi(hooks ...Hook) Hook {
	return Func(func(e Event) {
		for _, h := range hooks {
			if h != nil {
				h.Event(e)
			}
		}
	})
}

// Recorder keeps every event (tests, and the web console's history of a
// running action).
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *Recorder) Event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Events returns a copy of what was recorded so far.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
