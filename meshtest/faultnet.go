// Package meshtest is the test kit for Mesh runtime tests: an in-process fault
// network (FaultNet) that partitions, blackholes, delays and resets the
// connections between named nodes, over loopback TCP or in memory (the
// latter usable inside a testing/synctest bubble); helpers that run real node processes
// with per-test logs (StartProcess, ArtifactDir, FreePort, BuildBinary,
// Eventually); and an invariant checker over the states observed during a
// fault scenario (History).
//
// Faults and checks are kept apart, as in etcd's robustness tests: a scenario
// breaks the cluster through FaultNet or signals, records what each node
// reports into a History, and asks History.Check whether the result is still
// correct.
//
// The package imports only the standard library and nothing from mesh, so the
// runtime's own tests can use it.
package meshtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Network is the seam through which the runtime listens and dials. The root
// package declares the same two methods; *Endpoint implements them.
type Network interface {
	// Listen announces on a local address, as net.Listen does.
	Listen(network, addr string) (net.Listener, error)
	// DialContext connects to addr, as (*net.Dialer).DialContext does.
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

var _ Network = (*Endpoint)(nil)

// ErrFaultRefused is the cause of a dial refused by a FaultNet rule. It is
// wrapped in a *net.OpError.
var ErrFaultRefused = errors.New("meshtest: connection refused by fault network")

// awaitDialerLimit bounds how long Accept waits to learn which node dialed a
// connection. It is only reached if a dial never finishes registering.
const awaitDialerLimit = 2 * time.Second

// link is one direction between two nodes.
type link struct{ from, to string }

// rule is the fault applied to one link.
type rule struct {
	blocked bool
	delay   time.Duration
}

// FaultNet is an in-process fault-injecting network over real loopback TCP
// (New) or over in-memory connections (NewMemory). Each node gets an Endpoint, whose listeners and dialed connections are
// wrapped so that the FaultNet knows the node on each side of every
// connection and can block, delay or reset the traffic between two nodes.
//
// Rules act on writes: a blocked write waits, honouring the connection's
// write deadline, until the rule is lifted or the connection is closed. Reads
// are untouched; they simply see no data. Connections from outside the
// FaultNet (plain net.Dial) are never faulted.
//
// All methods are safe for concurrent use. The FaultNet starts no goroutines.
type FaultNet struct {
	mu           sync.Mutex                // guards every field below
	nodes        map[string]*Endpoint      // by node name
	rules        map[link]rule             // absent: no fault
	rulesChanged chan struct{}             // closed and replaced when rules change
	listeners    map[netip.AddrPort]string // bound address → listening node
	lns          map[*listener]struct{}    // open listeners
	dialers      map[string]string         // local address of a dialed conn → dialing node
	dialing      int                       // dials in flight
	dialsChanged chan struct{}             // closed and replaced when a dial finishes
	conns        map[*conn]struct{}        // open wrapped conns
	mem          *memState                 // nil in TCP mode (New); set by NewMemory
}

// New returns an empty FaultNet with no rules.
func New() *FaultNet {
	return &FaultNet{
		nodes:        make(map[string]*Endpoint),
		rules:        make(map[link]rule),
		rulesChanged: make(chan struct{}),
		listeners:    make(map[netip.AddrPort]string),
		lns:          make(map[*listener]struct{}),
		dialers:      make(map[string]string),
		dialsChanged: make(chan struct{}),
		conns:        make(map[*conn]struct{}),
	}
}

// Node returns the Endpoint of the named node, creating it on first use.
// Every call with the same name returns the same Endpoint.
func (fn *FaultNet) Node(name string) *Endpoint {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	ep, ok := fn.nodes[name]
	if !ok {
		ep = &Endpoint{fn: fn, name: name}
		fn.nodes[name] = ep
	}
	return ep
}

// Partition cuts a and b apart in both directions: writes between them block
// and new dials between them fail, until Heal.
func (fn *FaultNet) Partition(a, b string) {
	fn.update(func() {
		fn.setRule(link{a, b}, func(r *rule) { r.blocked = true })
		fn.setRule(link{b, a}, func(r *rule) { r.blocked = true })
	})
}

// Blackhole blocks writes from one node to another, in that direction only;
// writes from to back to from still flow. New dials between the two fail,
// since a TCP handshake needs both directions.
func (fn *FaultNet) Blackhole(from, to string) {
	fn.update(func() { fn.setRule(link{from, to}, func(r *rule) { r.blocked = true }) })
}

// Delay holds every write from one node to another for d before it is sent.
// The writer waits out the delay (within its write deadline), so a delay
// also slows the sender. A zero d removes the delay.
func (fn *FaultNet) Delay(from, to string, d time.Duration) {
	fn.update(func() { fn.setRule(link{from, to}, func(r *rule) { r.delay = d }) })
}

// Heal removes every rule. Blocked writes resume.
func (fn *FaultNet) Heal() {
	fn.update(func() { clear(fn.rules) })
}

// Reset closes every open connection between a and b, on both sides, as a
// connection reset would. Later dials succeed unless a rule forbids them.
func (fn *FaultNet) Reset(a, b string) {
	fn.mu.Lock()
	var victims []*conn
	for c := range fn.conns {
		if (c.local == a && c.remote == b) || (c.local == b && c.remote == a) {
			victims = append(victims, c)
		}
	}
	fn.mu.Unlock()
	for _, c := range victims {
		c.Close()
	}
}

// Close closes every listener and connection the FaultNet has handed out.
// Rules are kept; the FaultNet and its Endpoints remain usable.
func (fn *FaultNet) Close() {
	fn.mu.Lock()
	conns := make([]*conn, 0, len(fn.conns))
	for c := range fn.conns {
		conns = append(conns, c)
	}
	lns := make([]*listener, 0, len(fn.lns))
	for l := range fn.lns {
		lns = append(lns, l)
	}
	fn.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	for _, c := range conns {
		c.Close()
	}
}

// ConnNodes reports the node names on the local and remote side of c, a
// connection returned by an Endpoint or accepted from one of its listeners.
// remote is "" when the peer is not a FaultNet node. ok is false when c did
// not come from a FaultNet.
func ConnNodes(c net.Conn) (local, remote string, ok bool) {
	fc, ok := c.(*conn)
	if !ok {
		return "", "", false
	}
	return fc.local, fc.remote, true
}

// update runs change under the lock and wakes every write waiting on rules.
func (fn *FaultNet) update(change func()) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	change()
	close(fn.rulesChanged)
	fn.rulesChanged = make(chan struct{})
}

// setRule edits the rule of l; fn.mu must be held.
func (fn *FaultNet) setRule(l link, edit func(*rule)) {
	r := fn.rules[l]
	edit(&r)
	if r == (rule{}) {
		delete(fn.rules, l)
		return
	}
	fn.rules[l] = r
}

// rule returns the rule of from→to and a channel closed at the next change.
func (fn *FaultNet) rule(from, to string) (rule, <-chan struct{}) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.rules[link{from, to}], fn.rulesChanged
}

// lookupListener returns the node listening on ap, directly or through a
// wildcard address; fn.mu must be held.
func (fn *FaultNet) lookupListener(ap netip.AddrPort) (string, bool) {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if node, ok := fn.listeners[ap]; ok {
		return node, true
	}
	for _, wild := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		if node, ok := fn.listeners[netip.AddrPortFrom(wild, ap.Port())]; ok {
			return node, true
		}
	}
	return "", false
}

// targetOf guesses which node a dial to addr reaches, before dialing;
// fn.mu must be held. It understands IP literals and "localhost".
func (fn *FaultNet) targetOf(addr string) string {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	port, err := net.LookupPort("tcp", portStr)
	if err != nil {
		return ""
	}
	var candidates []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		candidates = []netip.Addr{ip.WithZone("")}
	} else if host == "localhost" || host == "" {
		candidates = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	}
	for _, ip := range candidates {
		if node, ok := fn.lookupListener(netip.AddrPortFrom(ip, uint16(port))); ok {
			return node
		}
	}
	return ""
}

// awaitDialer returns the node that dialed the connection whose remote
// address is remote, waiting while FaultNet dials are still registering.
func (fn *FaultNet) awaitDialer(remote string) string {
	limit := time.NewTimer(awaitDialerLimit)
	defer limit.Stop()
	for {
		fn.mu.Lock()
		node, ok := fn.dialers[remote]
		pending, changed := fn.dialing, fn.dialsChanged
		fn.mu.Unlock()
		if ok || pending == 0 {
			return node
		}
		select {
		case <-changed:
		case <-limit.C:
			return ""
		}
	}
}

// track registers an open conn; forget removes it.
func (fn *FaultNet) track(c *conn) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.conns[c] = struct{}{}
}

func (fn *FaultNet) forget(c *conn) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	delete(fn.conns, c)
	if c.dialed {
		key := c.LocalAddr().String()
		if fn.dialers[key] == c.local {
			delete(fn.dialers, key)
		}
	}
}

// Endpoint is one node's view of a FaultNet. It implements Network on real
// loopback TCP, or in memory; every connection it makes or accepts is subject to the
// FaultNet's rules. It is safe for concurrent use.
type Endpoint struct {
	fn   *FaultNet
	name string
}

// Name returns the node name the Endpoint was created with.
func (ep *Endpoint) Name() string { return ep.name }

// Listen announces on a local TCP address (network "tcp", "tcp4" or "tcp6"),
// in memory if the FaultNet was made by NewMemory. Connections accepted from
// the returned listener know which node dialed them. Closing the listener
// leaves accepted connections open.
func (ep *Endpoint) Listen(network, addr string) (net.Listener, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, fmt.Errorf("meshtest: listen %s %s: only TCP is supported", network, addr)
	}
	var inner net.Listener
	var err error
	if ep.fn.mem != nil {
		inner, err = ep.listenMemory(network, addr)
	} else {
		inner, err = net.Listen(network, addr)
	}
	if err != nil {
		return nil, err
	}
	ap := inner.Addr().(*net.TCPAddr).AddrPort()
	l := &listener{Listener: inner, ep: ep, key: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}
	fn := ep.fn
	fn.mu.Lock()
	fn.listeners[l.key] = ep.name
	fn.lns[l] = struct{}{}
	fn.mu.Unlock()
	return l, nil
}

// DialContext connects to addr over TCP, or in memory if the FaultNet was
// made by NewMemory. A dial to a node that is partitioned or blackholed from
// this one, in either direction, fails at once with a *net.OpError wrapping
// ErrFaultRefused.
func (ep *Endpoint) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	fn := ep.fn
	fn.mu.Lock()
	if target := fn.targetOf(addr); target != "" &&
		(fn.rules[link{ep.name, target}].blocked || fn.rules[link{target, ep.name}].blocked) {
		fn.mu.Unlock()
		return nil, &net.OpError{Op: "dial", Net: network, Err: fmt.Errorf("%w: %s to %s (%s)", ErrFaultRefused, ep.name, target, addr)}
	}
	if fn.mem != nil {
		fn.mu.Unlock()
		inner, remote, err := fn.dialMemory(ctx, ep.name, network, addr)
		if err != nil {
			return nil, err
		}
		c := newConn(inner, fn, ep.name, remote)
		fn.track(c)
		return c, nil
	}
	fn.dialing++
	fn.mu.Unlock()

	var d net.Dialer
	inner, err := d.DialContext(ctx, network, addr)

	fn.mu.Lock()
	defer fn.mu.Unlock()
	fn.dialing--
	close(fn.dialsChanged)
	fn.dialsChanged = make(chan struct{})
	if err != nil {
		return nil, err
	}
	remote := ""
	if tcp, ok := inner.RemoteAddr().(*net.TCPAddr); ok {
		remote, _ = fn.lookupListener(tcp.AddrPort())
	}
	c := newConn(inner, fn, ep.name, remote)
	c.dialed = true
	fn.dialers[inner.LocalAddr().String()] = ep.name
	fn.conns[c] = struct{}{}
	return c, nil
}

// listener wraps a TCP listener of an Endpoint.
type listener struct {
	net.Listener
	ep  *Endpoint
	key netip.AddrPort
}

// Accept waits for the next connection and learns which node dialed it.
func (l *listener) Accept() (net.Conn, error) {
	inner, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	var remote string
	if mc, ok := inner.(*memConn); ok {
		remote = mc.remoteNode
	} else {
		remote = l.ep.fn.awaitDialer(inner.RemoteAddr().String())
	}
	c := newConn(inner, l.ep.fn, l.ep.name, remote)
	l.ep.fn.track(c)
	return c, nil
}

// Close stops listening; the address no longer maps to the node.
func (l *listener) Close() error {
	fn := l.ep.fn
	fn.mu.Lock()
	if fn.listeners[l.key] == l.ep.name {
		delete(fn.listeners, l.key)
	}
	delete(fn.lns, l)
	fn.mu.Unlock()
	return l.Listener.Close()
}

// conn is a TCP connection between two named nodes whose writes obey the
// FaultNet rules for local→remote.
type conn struct {
	net.Conn
	fn            *FaultNet
	local, remote string
	dialed        bool // registered in fn.dialers under its local address

	mu              sync.Mutex    // guards writeDeadline and deadlineChanged
	writeDeadline   time.Time     // zero: none
	deadlineChanged chan struct{} // closed when the write deadline changes

	closeOnce sync.Once
	closed    chan struct{} // closed by Close
}

func newConn(inner net.Conn, fn *FaultNet, local, remote string) *conn {
	return &conn{Conn: inner, fn: fn, local: local, remote: remote,
		deadlineChanged: make(chan struct{}), closed: make(chan struct{})}
}

// Write waits until the FaultNet lets local→remote traffic through, then
// writes b.
func (c *conn) Write(b []byte) (int, error) {
	if err := c.waitWritable(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// waitWritable blocks while the link is blocked or its delay has not elapsed
// since the write began, until the write deadline or Close.
func (c *conn) waitWritable() error {
	start := time.Now()
	for {
		r, rulesChanged := c.fn.rule(c.local, c.remote)
		c.mu.Lock()
		deadline, deadlineChanged := c.writeDeadline, c.deadlineChanged
		c.mu.Unlock()
		select {
		case <-c.closed:
			return c.opError(net.ErrClosed)
		default:
		}

		now := time.Now()
		var wake time.Time // zero: wait for an event only
		switch {
		case r.blocked:
		case r.delay > 0 && now.Before(start.Add(r.delay)):
			wake = start.Add(r.delay)
		default:
			return nil
		}
		if !deadline.IsZero() {
			if !now.Before(deadline) {
				return c.opError(os.ErrDeadlineExceeded)
			}
			if wake.IsZero() || deadline.Before(wake) {
				wake = deadline
			}
		}
		var timer *time.Timer
		var fired <-chan time.Time
		if !wake.IsZero() {
			timer = time.NewTimer(wake.Sub(now))
			fired = timer.C
		}
		select {
		case <-rulesChanged:
		case <-deadlineChanged:
		case <-c.closed:
		case <-fired:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (c *conn) opError(err error) error {
	return &net.OpError{Op: "write", Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// SetDeadline sets the read and write deadlines.
func (c *conn) SetDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline sets the write deadline, also for a write already waiting
// on a fault.
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.setWriteDeadline(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *conn) setWriteDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writeDeadline = t
	close(c.deadlineChanged)
	c.deadlineChanged = make(chan struct{})
}

// Close closes the connection and wakes a write waiting on a fault.
func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.fn.forget(c)
	})
	return c.Conn.Close()
}
