package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// maxAgentMessage bounds the agent's own error text kept in errors (it
// comes from the guest).
const maxAgentMessage = 200

// AgentCommand implements virt.Hypervisor through
// virDomainQemuAgentCommand. libvirt taints the domain
// ("custom-ga-command" in its log) the first time; that is only a note.
func (h *Hypervisor) AgentCommand(ctx context.Context, name string, command []byte, timeout time.Duration) ([]byte, error) {
	const op = "guest agent command"
	d, err := h.lookupDomain(ctx, op, name)
	if err != nil {
		return nil, err
	}
	defer d.Free()
	secs := int((timeout + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := int((time.Until(dl) + time.Second - 1) / time.Second); left < secs {
			secs = max(left, 1)
		}
	}
	out, err := d.QemuAgentCommand(string(command), libvirt.DomainQemuAgentCommandTimeout(secs), 0)
	if err != nil {
		return nil, agentError(op, name, err)
	}
	return []byte(out), nil
}

// agentError maps libvirt's agent errors onto the port's sentinels. The
// agent's own message (guest text) is sanitised and cut short.
func agentError(op, name string, err error) error {
	var lv libvirt.Error
	if !errors.As(err, &lv) {
		return wrap(op, name, err)
	}
	msg := sanitizeGuestText(lv.Message, maxAgentMessage)
	lower := strings.ToLower(lv.Message)
	switch {
	case lv.Code == libvirt.ERR_AGENT_UNRESPONSIVE, lv.Code == libvirt.ERR_AGENT_COMMAND_TIMEOUT,
		lv.Code == libvirt.ERR_AGENT_UNSYNCED:
		return fmt.Errorf("%s %q: %w: %s", op, name, virt.ErrAgentUnavailable, msg)
	case lv.Code == libvirt.ERR_ARGUMENT_UNSUPPORTED && strings.Contains(lower, "not configured"):
		return fmt.Errorf("%s %q: %w: the domain has no guest agent channel (%s)", op, name, virt.ErrUnsupported, msg)
	case lv.Code == libvirt.ERR_OPERATION_INVALID:
		return fmt.Errorf("%s %q: %w: %s", op, name, virt.ErrInvalidState, msg)
	case lv.Code == libvirt.ERR_AGENT_COMMAND_FAILED,
		lv.Code == libvirt.ERR_INTERNAL_ERROR && strings.Contains(lower, "unable to execute qemu agent command"):
		return fmt.Errorf("%s %q: %w: %s", op, name, virt.ErrAgentCommand, msg)
	}
	if s := sentinel(lv); s != nil {
		return fmt.Errorf("%s %q: %w: %s", op, name, s, msg)
	}
	return fmt.Errorf("%s %q: %s (libvirt error %d)", op, name, msg, int(lv.Code))
}

// sanitizeGuestText keeps printable characters of s, at most n runes.
func sanitizeGuestText(s string, n int) string {
	var b strings.Builder
	i := 0
	for _, r := range s {
		if i >= n {
			b.WriteString("...")
			break
		}
		if !unicode.IsPrint(r) {
			r = '?'
		}
		b.WriteRune(r)
		i++
	}
	return b.String()
}
