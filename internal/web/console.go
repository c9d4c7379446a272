package web

import (
	"context"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// maxConsoleMessage bounds one websocket message from the browser (key and
// pointer events are a few bytes; clipboard text is cut here).
const maxConsoleMessage = 64 << 10

// handleConsole relays a websocket (noVNC, binary messages) to the VM's
// VNC display. It interprets nothing of the RFB stream in either
// direction: bytes from the guest are only copied, in bounded reads.
// The websocket library refuses a handshake whose Origin is not this host
// (the page's session cookie alone cannot open a console from another
// site).
func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request, c *caller) {
	v, ok := s.lookup(w, r, c)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	display, err := s.opts.Backend.OpenDisplay(ctx, v.Name)
	cancel()
	if err != nil {
		s.audit(r, c, AuditEntry{Action: "console", Profile: v.Profile, VM: v.Name, Result: "failed", Error: err.Error()})
		backendError(w, err)
		return
	}
	defer display.Close()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"binary"}})
	if err != nil {
		s.audit(r, c, AuditEntry{Action: "console", Profile: v.Profile, VM: v.Name, Result: "failed", Error: err.Error()})
		return // Accept has answered
	}
	ws.SetReadLimit(maxConsoleMessage)
	s.audit(r, c, AuditEntry{Action: "console", Profile: v.Profile, VM: v.Name, Result: "ok"})
	ctx, cancel = context.WithCancel(s.ctx)
	defer cancel()
	stop := context.AfterFunc(r.Context(), cancel)
	defer stop()
	conn := websocket.NetConn(ctx, ws, websocket.MessageBinary)
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() {
		// Guest -> browser: each read (at most 32 KiB) is one message.
		_, _ = io.CopyBuffer(conn, display, make([]byte, 32<<10))
		cancel()
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(display, conn)
		cancel()
		done <- struct{}{}
	}()
	<-ctx.Done()
	display.Close()
	conn.Close()
	<-done
	<-done
}
