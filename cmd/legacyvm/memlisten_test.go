package main

import (
	"net"
	"sync"
)

// memListener is a listener that opens no socket: commands run against
// the fake world (serve) listen on it, so no test depends on a free port
// of the host or listens in its network namespace. It accepts nothing
// until closed.
type memListener struct {
	addr net.Addr
	once sync.Once
	done chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *memListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *memListener) Addr() net.Addr { return l.addr }

// memListen records the address asked for and returns a memListener
// standing for it (the address must parse, as net.Listen would require).
func (w *fakeWorld) memListen(network, addr string) (net.Listener, error) {
	a, err := net.ResolveTCPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.listened = append(w.listened, addr)
	w.mu.Unlock()
	return &memListener{addr: a, done: make(chan struct{})}, nil
}
