package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"

	"github.com/legacyvm/legacyvm/internal/virt"
)

// sentinel maps a libvirt error onto virt's sentinel errors (nil when none
// fits). Messages are consulted where libvirt reports one condition under
// a generic code (in use, already exists, lock timeouts).
func sentinel(e libvirt.Error) error {
	msg := strings.ToLower(e.Message)
	switch {
	case strings.Contains(msg, "cannot acquire state change lock"),
		strings.Contains(msg, "timeout acquiring"):
		return virt.ErrBusy
	case strings.Contains(msg, "is in use"),
		strings.Contains(msg, "still in use"),
		strings.Contains(msg, "active ports"),
		strings.Contains(msg, "active connections"):
		return virt.ErrInUse
	case strings.Contains(msg, "already exists"),
		strings.Contains(msg, "already defined"),
		strings.Contains(msg, "already in use"),
		strings.Contains(msg, "source conflict with pool"):
		return virt.ErrExists
	}
	switch e.Code {
	case libvirt.ERR_NO_DOMAIN, libvirt.ERR_NO_NETWORK, libvirt.ERR_NO_NWFILTER,
		libvirt.ERR_NO_STORAGE_VOL, libvirt.ERR_NO_STORAGE_POOL, libvirt.ERR_NO_DOMAIN_SNAPSHOT,
		libvirt.ERR_NO_NWFILTER_BINDING, libvirt.ERR_NO_NETWORK_PORT, libvirt.ERR_NO_INTERFACE:
		return virt.ErrNotFound
	case libvirt.ERR_OPERATION_INVALID:
		return virt.ErrInvalidState
	case libvirt.ERR_OPERATION_TIMEOUT:
		return virt.ErrBusy
	case libvirt.ERR_DOM_EXIST, libvirt.ERR_NETWORK_EXIST, libvirt.ERR_STORAGE_VOL_EXIST,
		libvirt.ERR_NETWORK_PORT_EXIST:
		return virt.ErrExists
	case libvirt.ERR_XML_ERROR, libvirt.ERR_XML_DETAIL, libvirt.ERR_XML_INVALID_SCHEMA,
		libvirt.ERR_CONFIG_UNSUPPORTED, libvirt.ERR_INVALID_ARG, libvirt.ERR_INVALID_MAC,
		libvirt.ERR_NO_NAME, libvirt.ERR_NO_SOURCE, libvirt.ERR_NO_TARGET, libvirt.ERR_NO_OS,
		libvirt.ERR_OS_TYPE, libvirt.ERR_PARSE_FAILED, libvirt.ERR_CONF_SYNTAX,
		libvirt.ERR_INVALID_NWFILTER, libvirt.ERR_INVALID_NETWORK, libvirt.ERR_INVALID_STORAGE_POOL,
		libvirt.ERR_INVALID_STORAGE_VOL, libvirt.ERR_INVALID_DOMAIN_SNAPSHOT:
		return virt.ErrInvalid
	case libvirt.ERR_NO_SUPPORT, libvirt.ERR_OPERATION_UNSUPPORTED, libvirt.ERR_ARGUMENT_UNSUPPORTED:
		return virt.ErrUnsupported
	case libvirt.ERR_NO_CONNECT, libvirt.ERR_INVALID_CONN, libvirt.ERR_RPC, libvirt.ERR_AUTH_FAILED,
		libvirt.ERR_AUTH_CANCELLED, libvirt.ERR_AUTH_UNAVAILABLE:
		return virt.ErrConnection
	case libvirt.ERR_SYSTEM_ERROR:
		if e.Domain == libvirt.FROM_RPC || e.Domain == libvirt.FROM_REMOTE {
			return virt.ErrConnection
		}
		if strings.Contains(msg, "no such file or directory") {
			return virt.ErrNotFound
		}
	case libvirt.ERR_INTERNAL_ERROR:
		if strings.Contains(msg, "client socket is closed") || strings.Contains(msg, "connection") && strings.Contains(msg, "closed") {
			return virt.ErrConnection
		}
	}
	if e.Domain == libvirt.FROM_RPC && e.Code != libvirt.ERR_OK {
		return virt.ErrConnection
	}
	return nil
}

// wrap turns err from a libvirt call about object name into the error the
// port promises: `define domain "x": invalid definition: <libvirt's
// message>`. libvirt's message is kept (it is what a user needs to fix a
// definition); libvirt.Error itself is not wrapped, so callers branch on
// virt's sentinels only.
func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	prefix := op
	if name != "" {
		prefix = fmt.Sprintf("%s %q", op, name)
	}
	var lv libvirt.Error
	if errors.As(err, &lv) {
		if s := sentinel(lv); s != nil {
			return fmt.Errorf("%s: %w: %s", prefix, s, lv.Message)
		}
		return fmt.Errorf("%s: %s (libvirt error %d)", prefix, lv.Message, int(lv.Code))
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

// failf is an error of our own about object name, wrapping sentinel.
func failf(op, name string, sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s %q: %w: %s", op, name, sentinel, fmt.Sprintf(format, args...))
}

// invalid wraps a renderer (domainxml) error as virt.ErrInvalid unless it
// already carries a sentinel.
func invalid(op, name string, err error) error {
	for _, s := range []error{virt.ErrUnsupported, virt.ErrInvalid} {
		if errors.Is(err, s) {
			return fmt.Errorf("%s %q: %w", op, name, err)
		}
	}
	return fmt.Errorf("%s %q: %w: %v", op, name, virt.ErrInvalid, err)
}

// alive checks ctx before a libvirt call: cgo calls cannot be interrupted,
// so a cancelled operation stops between calls.
func alive(ctx context.Context, op, name string) error {
	if err := ctx.Err(); err != nil {
		if name == "" {
			return fmt.Errorf("%s: %w", op, err)
		}
		return fmt.Errorf("%s %q: %w", op, name, err)
	}
	return nil
}

// isNotFound reports whether a libvirt error says the object is missing.
func isNotFound(err error) bool {
	var lv libvirt.Error
	return errors.As(err, &lv) && sentinel(lv) == virt.ErrNotFound
}

// message is libvirt's message of err (or err's text).
func message(err error) string {
	var lv libvirt.Error
	if errors.As(err, &lv) {
		return lv.Message
	}
	return err.Error()
}

// isNotFoundWrapped reports whether an error this package built means the
// object is missing.
func isNotFoundWrapped(err error) bool { return errors.Is(err, virt.ErrNotFound) }
