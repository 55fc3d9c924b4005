package meshtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// In memory mode (NewMemory) a FaultNet carries no bytes through the host:
// listeners and connections are in-memory pipes, and every wait — a read with
// no data, a write into a full buffer, a deadline — is a channel receive or a
// time.Timer. Inside a testing/synctest bubble those waits are durable, so the
// bubble's clock advances while nodes wait on each other, and deadlines follow
// that clock. The fault rules (Partition, Blackhole, Delay, Reset, Heal) act
// exactly as in TCP mode: they wrap the in-memory connection as they wrap a
// TCP one.

// memBufferSize is how many bytes one direction of an in-memory connection
// holds before a write waits for the reader, like a loopback socket buffer.
const memBufferSize = 256 << 10

// memBacklog is how many dialed connections a listener holds before Accept;
// a dial beyond it is refused, as a full TCP backlog would drop it.
const memBacklog = 128

// firstMemPort is the first port handed out for a listen or dial on port 0.
const firstMemPort = 40000

// memState is the part of a FaultNet that exists in memory mode only; it is
// guarded by FaultNet.mu.
type memState struct {
	listeners map[netip.AddrPort]*memListener // by bound address
	nextPort  uint16                          // next ephemeral port to try
	used      map[uint16]int                  // listeners and dialers holding each port
}

// NewMemory returns an empty FaultNet with no rules whose Endpoints listen
// and dial in memory: no socket is opened, addresses are only names, and two
// FaultNets never see each other's listeners. Addresses are host:port pairs
// whose host is an IP literal, "localhost" (127.0.0.1, then ::1) or empty (a
// wildcard listener); port 0 picks a free port.
//
// A memory FaultNet can run inside a testing/synctest bubble: every blocking
// operation of its connections and listeners is durably blocking and every
// deadline is measured on the bubble's clock. Create it inside the bubble
// that uses it (channels made outside a bubble do not block durably) and
// close everything it handed out before the bubble ends. It works the same
// outside a bubble.
func NewMemory() *FaultNet {
	fn := New()
	fn.mem = &memState{
		listeners: make(map[netip.AddrPort]*memListener),
		nextPort:  firstMemPort,
		used:      make(map[uint16]int),
	}
	return fn
}

// Memory reports whether fn was made by NewMemory.
func (fn *FaultNet) Memory() bool { return fn.mem != nil }

// memHost maps the host of an address to the IP a memory listener binds or
// a memory dial reaches; "" and "localhost" are special as described at
// NewMemory.
func memHosts(network, host string, listen bool) ([]netip.Addr, error) {
	switch host {
	case "":
		if !listen {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		if network == "tcp4" {
			return []netip.Addr{netip.IPv4Unspecified()}, nil
		}
		return []netip.Addr{netip.IPv6Unspecified()}, nil
	case "localhost":
		switch network {
		case "tcp4":
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		case "tcp6":
			return []netip.Addr{netip.IPv6Loopback()}, nil
		}
		if listen {
			return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
		}
		return []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("host %q is not an IP address or localhost", host)
	}
	ip = ip.WithZone("").Unmap()
	if (network == "tcp4" && !ip.Is4()) || (network == "tcp6" && !ip.Is6()) {
		return nil, fmt.Errorf("address %s does not fit network %s", ip, network)
	}
	return []netip.Addr{ip}, nil
}

// splitMemAddr splits addr into its hosts and port.
func splitMemAddr(network, addr string, listen bool) ([]netip.Addr, uint16, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, 0, fmt.Errorf("only TCP is supported")
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("port %q is not a number", portStr)
	}
	ips, err := memHosts(network, host, listen)
	return ips, uint16(port), err
}

// allocPortLocked returns a port no memory listener or dialer uses; fn.mu
// must be held.
func (m *memState) allocPortLocked() (uint16, error) {
	for range 1 << 16 {
		p := m.nextPort
		m.nextPort++
		if m.nextPort == 0 {
			m.nextPort = 1024
		}
		if m.used[p] == 0 {
			m.used[p]++
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free port")
}

// listenMemory binds an in-memory listener for ep.
func (ep *Endpoint) listenMemory(network, addr string) (*memListener, error) {
	ips, port, err := splitMemAddr(network, addr, true)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: fmt.Errorf("meshtest: listen %s: %w", addr, err)}
	}
	fn := ep.fn
	fn.mu.Lock()
	defer fn.mu.Unlock()
	m := fn.mem
	if port == 0 {
		if port, err = m.allocPortLocked(); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: err}
		}
	}
	key := netip.AddrPortFrom(ips[0], port)
	if _, taken := m.listeners[key]; taken {
		return nil, &net.OpError{Op: "listen", Net: network, Addr: net.TCPAddrFromAddrPort(key),
			Err: &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}}
	}
	m.used[port]++
	l := &memListener{fn: fn, node: ep.name, key: key, addr: net.TCPAddrFromAddrPort(key),
		backlog: make(chan *memConn, memBacklog), done: make(chan struct{})}
	m.listeners[key] = l
	return l, nil
}

// dialMemory connects from the node named from to addr in memory. It returns
// the dialer's side of the connection and the node listening at addr.
func (fn *FaultNet) dialMemory(ctx context.Context, from, network, addr string) (net.Conn, string, error) {
	ips, port, err := splitMemAddr(network, addr, false)
	if err != nil {
		return nil, "", &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("meshtest: dial %s: %w", addr, err)}
	}
	if err := ctx.Err(); err != nil {
		return nil, "", &net.OpError{Op: "dial", Net: network, Err: err}
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	m := fn.mem
	for _, ip := range ips {
		ap := netip.AddrPortFrom(ip, port)
		l := m.listeners[ap]
		if l == nil {
			for _, wild := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
				if l = m.listeners[netip.AddrPortFrom(wild, port)]; l != nil {
					break
				}
			}
		}
		if l == nil {
			continue
		}
		local, err := m.allocPortLocked()
		if err != nil {
			return nil, "", &net.OpError{Op: "dial", Net: network, Err: err}
		}
		client, server := memPipe(net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, local)), net.TCPAddrFromAddrPort(ap), fn, local)
		server.remoteNode = from
		select {
		case l.backlog <- server:
		default: // full backlog, or the listener closed just now
			m.releaseLocked(local)
			return nil, "", refused(network, ap)
		}
		return client, l.node, nil
	}
	return nil, "", refused(network, netip.AddrPortFrom(ips[0], port))
}

func refused(network string, ap netip.AddrPort) error {
	return &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(ap),
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
}

// memListener is an in-memory listener. Connections dialed to it wait in its
// backlog until accepted; closing it refuses new dials and closes those
// never accepted.
type memListener struct {
	fn      *FaultNet
	node    string // the listening node
	key     netip.AddrPort
	addr    *net.TCPAddr
	backlog chan *memConn // dialed, not yet accepted; sent to under fn.mu
	once    sync.Once
	done    chan struct{} // closed by Close
}

// Accept waits for the next dialed connection or Close.
func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.backlog:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
}

// Close unbinds the address and closes the connections never accepted.
func (l *memListener) Close() error {
	first := false
	l.once.Do(func() {
		first = true
		l.fn.mu.Lock()
		if l.fn.mem.listeners[l.key] == l {
			delete(l.fn.mem.listeners, l.key)
			l.fn.mem.releaseLocked(l.key.Port())
		}
		close(l.done)
		var pending []*memConn
		for {
			select {
			case c := <-l.backlog:
				pending = append(pending, c)
				continue
			default:
			}
			break
		}
		l.fn.mu.Unlock()
		for _, c := range pending {
			c.Close()
		}
	})
	if !first {
		return &net.OpError{Op: "close", Net: "tcp", Addr: l.addr, Err: net.ErrClosed}
	}
	return nil
}

// Addr returns the bound address, a *net.TCPAddr.
func (l *memListener) Addr() net.Addr { return l.addr }

// half is one direction of an in-memory connection: the bytes written by one
// side and not yet read by the other, and the state both sides wait on.
type half struct {
	mu            sync.Mutex
	buf           []byte
	writerClosed  bool          // the writing side closed: the reader sees EOF once buf is drained
	readerClosed  bool          // the reading side closed: writes fail as on a reset connection
	readDeadline  time.Time     // of the reading side; zero: none
	writeDeadline time.Time     // of the writing side; zero: none
	changed       chan struct{} // closed and replaced on every change above
}

func newHalf() *half { return &half{changed: make(chan struct{})} }

// notifyLocked wakes every wait on h; h.mu must be held.
func (h *half) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// memConn is one side of an in-memory connection.
type memConn struct {
	in, out       *half // in: what this side reads; out: what it writes
	local, remote *net.TCPAddr
	remoteNode    string // for an accepted side: the node that dialed

	fn        *FaultNet // on the dialer's side only: to release localPort
	localPort uint16    // the dialer's port, on the dialer's side only; 0 otherwise
}

// memPipe returns both sides of a new in-memory connection from client
// (whose port localPort was allocated from fn) to server.
func memPipe(client, server *net.TCPAddr, fn *FaultNet, localPort uint16) (*memConn, *memConn) {
	up, down := newHalf(), newHalf()
	c := &memConn{in: down, out: up, local: client, remote: server, fn: fn, localPort: localPort}
	s := &memConn{in: up, out: down, local: server, remote: client}
	return c, s
}

// wait blocks until changed is closed or deadline passes; it returns
// os.ErrDeadlineExceeded if deadline has passed.
func wait(changed <-chan struct{}, deadline time.Time) error {
	if deadline.IsZero() {
		<-changed
		return nil
	}
	d := time.Until(deadline)
	if d <= 0 {
		return os.ErrDeadlineExceeded
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-changed:
		return nil
	case <-t.C:
		return os.ErrDeadlineExceeded
	}
}

func expired(deadline time.Time) bool {
	return !deadline.IsZero() && !time.Now().Before(deadline)
}

func (c *memConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads what the other side wrote, waiting for data until the read
// deadline. It returns io.EOF once the other side closed and everything it
// wrote was read.
func (c *memConn) Read(b []byte) (int, error) {
	h := c.in
	for {
		h.mu.Lock()
		switch {
		case h.readerClosed:
			h.mu.Unlock()
			return 0, c.opError("read", net.ErrClosed)
		case expired(h.readDeadline):
			h.mu.Unlock()
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case len(b) == 0:
			h.mu.Unlock()
			return 0, nil
		case len(h.buf) > 0:
			n := copy(b, h.buf)
			h.buf = h.buf[n:]
			if len(h.buf) == 0 {
				h.buf = nil // let a drained buffer go
			}
			h.notifyLocked()
			h.mu.Unlock()
			return n, nil
		case h.writerClosed:
			h.mu.Unlock()
			return 0, io.EOF
		}
		changed, deadline := h.changed, h.readDeadline
		h.mu.Unlock()
		if err := wait(changed, deadline); err != nil {
			return 0, c.opError("read", err)
		}
	}
}

// Write writes b for the other side, waiting while its buffer is full until
// the write deadline. It fails as on a reset connection once the other side
// closed.
func (c *memConn) Write(b []byte) (int, error) {
	h := c.out
	written := 0
	for {
		h.mu.Lock()
		switch {
		case h.writerClosed:
			h.mu.Unlock()
			return written, c.opError("write", net.ErrClosed)
		case h.readerClosed:
			h.mu.Unlock()
			return written, c.opError("write", &os.SyscallError{Syscall: "write", Err: syscall.ECONNRESET})
		case expired(h.writeDeadline):
			h.mu.Unlock()
			return written, c.opError("write", os.ErrDeadlineExceeded)
		case written == len(b):
			h.mu.Unlock()
			return written, nil
		}
		if room := memBufferSize - len(h.buf); room > 0 {
			n := min(room, len(b)-written)
			h.buf = append(h.buf, b[written:written+n]...)
			written += n
			h.notifyLocked()
			h.mu.Unlock()
			continue
		}
		changed, deadline := h.changed, h.writeDeadline
		h.mu.Unlock()
		if err := wait(changed, deadline); err != nil {
			return written, c.opError("write", err)
		}
	}
}

// Close closes this side: the other side reads what was written, then EOF,
// and its writes fail. Waits of this side return net.ErrClosed.
func (c *memConn) Close() error {
	c.out.mu.Lock()
	already := c.out.writerClosed
	c.out.writerClosed = true
	c.out.notifyLocked()
	c.out.mu.Unlock()

	c.in.mu.Lock()
	c.in.readerClosed = true
	c.in.buf = nil
	c.in.notifyLocked()
	c.in.mu.Unlock()
	if already {
		return c.opError("close", net.ErrClosed)
	}
	if c.fn != nil {
		c.fn.mu.Lock()
		c.fn.mem.releaseLocked(c.localPort)
		c.fn.mu.Unlock()
	}
	return nil
}

// releaseLocked drops one hold on port; the FaultNet's mutex must be held.
func (m *memState) releaseLocked(port uint16) {
	if m.used[port]--; m.used[port] <= 0 {
		delete(m.used, port)
	}
}

// LocalAddr returns this side's address, a *net.TCPAddr.
func (c *memConn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the other side's address, a *net.TCPAddr.
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *memConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the read deadline, also for a read already waiting.
func (c *memConn) SetReadDeadline(t time.Time) error {
	c.in.mu.Lock()
	defer c.in.mu.Unlock()
	c.in.readDeadline = t
	c.in.notifyLocked()
	return nil
}

// SetWriteDeadline sets the write deadline, also for a write already waiting.
func (c *memConn) SetWriteDeadline(t time.Time) error {
	c.out.mu.Lock()
	defer c.out.mu.Unlock()
	c.out.writeDeadline = t
	c.out.notifyLocked()
	return nil
}
