package hostcheck

import "net"

// ProbeListen reports whether a TCP listener could bind addr on this
// machine (it binds and closes): nil when the address is free.
func ProbeListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}
