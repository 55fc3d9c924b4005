package mesh

import (
	"net"
	"strconv"
)

// String renders name@host:port, bracketing an IPv6 host.
func (n NodeName) String() string {
	if n.Name == "" {
		return ""
	}
	return n.Name + "@" + n.Addr()
}

// Addr is the host:port the node listens on and is dialed at.
func (n NodeName) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// IsZero reports whether n is unset.
func (n NodeName) IsZero() bool { return n.Name == "" }
