package meshtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// quiet is how long a test watches a connection to conclude nothing arrives.
const quiet = 150 * time.Millisecond

// echoServer accepts on an Endpoint, echoes every connection and hands each
// accepted connection to the test.
type echoServer struct {
	ln       net.Listener
	accepted chan net.Conn
}

func startEcho(t *testing.T, ep *Endpoint, addr string) *echoServer {
	t.Helper()
	ln, err := ep.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := &echoServer{ln: ln, accepted: make(chan net.Conn, 16)}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case s.accepted <- c:
			default: // nobody is looking at accepted connections
			}
			wg.Go(func() { io.Copy(c, c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

func (s *echoServer) addr() string { return s.ln.Addr().String() }

// next returns the next accepted connection.
func (s *echoServer) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func dial(t *testing.T, ep *Endpoint, addr string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := ep.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("%s dial %s: %v", ep.Name(), addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip writes a line and reads the echo within a bound.
func roundTrip(t *testing.T, c net.Conn, line string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || got != line+"\n" {
		t.Fatalf("echo = %q, %v; want %q", got, err, line)
	}
}

// expectSilence asserts that nothing can be read from c for a while.
func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(quiet))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1)
	n, err := c.Read(buf)
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read during fault = %d bytes, %v; want a timeout", n, err)
	}
}

// checkNoLeak fails the test if goroutines started during it outlive it.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines leaked: %d before, %d after\n%s",
					before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func TestFaultNetKnowsBothSides(t *testing.T) {
	eachMode(t, true, func(t *testing.T, fn *FaultNet) {
		a, b := fn.Node("a"), fn.Node("b")
		if fn.Node("a") != a {
			t.Fatal("Node returned a new Endpoint for a known name")
		}
		for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
			srv := startEcho(t, b, addr)
			c := dial(t, a, srv.addr())
			roundTrip(t, c, "hello "+addr)
			if l, r, ok := ConnNodes(c); !ok || l != "a" || r != "b" {
				t.Errorf("dialed conn nodes = %q, %q, %v; want a, b", l, r, ok)
			}
			if l, r, ok := ConnNodes(srv.next(t)); !ok || l != "b" || r != "a" {
				t.Errorf("accepted conn nodes = %q, %q, %v; want b, a", l, r, ok)
			}
		}
		if _, _, ok := ConnNodes(&net.TCPConn{}); ok {
			t.Error("ConnNodes accepted a foreign conn")
		}
	})
}

func TestFaultNetPartitionBlocksAndHealResumes(t *testing.T) {
	eachMode(t, true, func(t *testing.T, fn *FaultNet) {
		a, b := fn.Node("a"), fn.Node("b")
		srv := startEcho(t, b, "127.0.0.1:0")
		c := dial(t, a, srv.addr())
		roundTrip(t, c, "before")

		fn.Partition("a", "b")
		wrote := make(chan error, 1)
		go func() {
			_, err := io.WriteString(c, "during\n")
			wrote <- err
		}()
		expectSilence(t, c)
		select {
		case err := <-wrote:
			t.Fatalf("write returned during partition: %v", err)
		default:
		}

		fn.Heal()
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatalf("write after heal: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("write still blocked after Heal")
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != "during\n" {
			t.Fatalf("echo after heal = %q, %v", got, err)
		}
	})
}

func TestFaultNetPartitionBlocksBothDirections(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
		c := dial(t, fn.Node("a"), srv.addr())
		server := srv.next(t)
		fn.Partition("b", "a")
		for name, conn := range map[string]net.Conn{"a→b": c, "b→a": server} {
			conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := conn.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s write during partition: %v; want deadline exceeded", name, err)
			}
		}
	})
}

func TestFaultNetWriteDeadline(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
		c := dial(t, fn.Node("a"), srv.addr())
		fn.Partition("a", "b")

		{ // set before write (no subtests: a synctest bubble cannot run them)
			start := time.Now()
			c.SetWriteDeadline(start.Add(80 * time.Millisecond))
			n, err := c.Write([]byte("x"))
			if n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write = %d, %v; want 0, deadline exceeded", n, err)
			}
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Errorf("error %v is not a net.Error timeout", err)
			}
			if elapsed := time.Since(start); elapsed < 80*time.Millisecond {
				t.Errorf("write gave up after %v, before its deadline", elapsed)
			}
		}
		{ // already passed
			c.SetDeadline(time.Now().Add(-time.Second))
			if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Write = %v; want deadline exceeded", err)
			}
		}
		{ // set while blocked
			c.SetWriteDeadline(time.Time{})
			wrote := make(chan error, 1)
			go func() {
				_, err := c.Write([]byte("x"))
				wrote <- err
			}()
			select {
			case err := <-wrote:
				t.Fatalf("write returned during partition: %v", err)
			case <-time.After(quiet):
			}
			c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
			select {
			case err := <-wrote:
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("write = %v; want deadline exceeded", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("new deadline did not wake the blocked write")
			}
		}
	})
}

func TestFaultNetDialsFailDuringPartition(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		a, b, c := fn.Node("a"), fn.Node("b"), fn.Node("c")
		srvA := startEcho(t, a, "127.0.0.1:0")
		srvB := startEcho(t, b, "[::1]:0")
		fn.Partition("a", "b")

		for _, tc := range []struct {
			from *Endpoint
			addr string
		}{{a, srvB.addr()}, {b, srvA.addr()}} {
			conn, err := tc.from.DialContext(t.Context(), "tcp", tc.addr)
			if err == nil {
				conn.Close()
				t.Fatalf("%s dialed %s during partition", tc.from.Name(), tc.addr)
			}
			var op *net.OpError
			if !errors.Is(err, ErrFaultRefused) || !errors.As(err, &op) {
				t.Errorf("dial error %v: want a *net.OpError wrapping ErrFaultRefused", err)
			}
		}
		roundTrip(t, dial(t, c, srvB.addr()), "c is not partitioned")

		fn.Heal()
		roundTrip(t, dial(t, a, srvB.addr()), "healed")
	})
}

func TestFaultNetBlackholeIsOneWay(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		a, b := fn.Node("a"), fn.Node("b")
		srv := startEcho(t, b, "127.0.0.1:0")
		c := dial(t, a, srv.addr())
		server := srv.next(t)

		fn.Blackhole("a", "b")
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Write([]byte("lost\n")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a→b write = %v; want deadline exceeded", err)
		}
		c.SetWriteDeadline(time.Time{})

		// b→a still flows.
		if _, err := io.WriteString(server, "from b\n"); err != nil {
			t.Fatalf("b→a write: %v", err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		got, err := bufio.NewReader(c).ReadString('\n')
		if err != nil || got != "from b\n" {
			t.Fatalf("a read = %q, %v", got, err)
		}

		if conn, err := a.DialContext(t.Context(), "tcp", srv.addr()); !errors.Is(err, ErrFaultRefused) {
			if conn != nil {
				conn.Close()
			}
			t.Fatalf("dial through a blackhole = %v; want refused", err)
		}
	})
}

func TestFaultNetDelay(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
		c := dial(t, fn.Node("a"), srv.addr())
		const d = 120 * time.Millisecond

		fn.Delay("a", "b", d)
		start := time.Now()
		roundTrip(t, c, "slow")
		if elapsed := time.Since(start); elapsed < d {
			t.Errorf("round trip took %v with a %v delay", elapsed, d)
		}

		// A deadline shorter than the delay fails the write.
		c.SetWriteDeadline(time.Now().Add(d / 4))
		if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("write with a deadline inside the delay = %v; want deadline exceeded", err)
		}
		c.SetWriteDeadline(time.Time{})

		fn.Delay("a", "b", 0)
		roundTrip(t, c, "fast again")
	})
}

func TestFaultNetReset(t *testing.T) {
	eachMode(t, true, func(t *testing.T, fn *FaultNet) {
		a, b, c := fn.Node("a"), fn.Node("b"), fn.Node("c")
		srv := startEcho(t, b, "127.0.0.1:0")
		ab := dial(t, a, srv.addr())
		server := srv.next(t)
		cb := dial(t, c, srv.addr())
		srv.next(t)

		fn.Reset("b", "a")
		for name, conn := range map[string]net.Conn{"dialer": ab, "acceptor": server} {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("%s read after reset = %v; want a closed-connection error", name, err)
			}
		}
		roundTrip(t, cb, "c keeps its connection")
		roundTrip(t, dial(t, a, srv.addr()), "a reconnects")
	})
}

func TestFaultNetCloseUnblocksWrite(t *testing.T) {
	eachMode(t, true, func(t *testing.T, fn *FaultNet) {
		srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
		c := dial(t, fn.Node("a"), srv.addr())
		fn.Partition("a", "b")
		wrote := make(chan error, 1)
		go func() {
			_, err := c.Write([]byte("x"))
			wrote <- err
		}()
		select {
		case err := <-wrote:
			t.Fatalf("write returned during partition: %v", err)
		case <-time.After(quiet):
		}
		c.Close()
		select {
		case err := <-wrote:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("write after Close = %v; want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock the write")
		}
	})
}

func TestFaultNetIgnoresForeignClients(t *testing.T) {
	fn := New()
	defer fn.Close()
	srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
	fn.Partition("a", "b")
	c, err := net.Dial("tcp", srv.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "plain client")
	if l, r, ok := ConnNodes(srv.next(t)); !ok || l != "b" || r != "" {
		t.Errorf("accepted foreign conn nodes = %q, %q, %v; want b, \"\"", l, r, ok)
	}
}

func TestFaultNetWildcardListener(t *testing.T) {
	eachMode(t, false, func(t *testing.T, fn *FaultNet) {
		srv := startEcho(t, fn.Node("b"), "0.0.0.0:0")
		_, port, _ := net.SplitHostPort(srv.addr())
		fn.Partition("a", "b")
		if conn, err := fn.Node("a").DialContext(t.Context(), "tcp", net.JoinHostPort("localhost", port)); !errors.Is(err, ErrFaultRefused) {
			if conn != nil {
				conn.Close()
			}
			t.Fatalf("dial to a wildcard listener of a partitioned node = %v; want refused", err)
		}
		fn.Heal()
		c := dial(t, fn.Node("a"), net.JoinHostPort("127.0.0.1", port))
		if _, r, _ := ConnNodes(c); r != "b" {
			t.Errorf("remote node = %q, want b", r)
		}
	})
}

func TestFaultNetListenRejectsNonTCP(t *testing.T) {
	if _, err := New().Node("a").Listen("udp", "127.0.0.1:0"); err == nil {
		t.Fatal("Listen accepted udp")
	}
}

// TestFaultNetConcurrentChurn exercises rules, dials, writes, resets and
// closes at once; run it with -race.
//
// It runs on the real clock in both modes: its clients loop until a
// deadline without ever waiting, which a bubble's clock would never reach.
func TestFaultNetConcurrentChurn(t *testing.T) {
	for _, mode := range []struct {
		name   string
		newNet func() *FaultNet
	}{{"tcp", New}, {"memory", NewMemory}} {
		t.Run(mode.name, func(t *testing.T) {
			checkNoLeak(t)
			fn := mode.newNet()
			t.Cleanup(fn.Close)
			srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
			ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			for _, name := range []string{"a", "c", "d"} {
				ep := fn.Node(name)
				wg.Go(func() {
					for ctx.Err() == nil {
						c, err := ep.DialContext(ctx, "tcp", srv.addr())
						if err != nil {
							time.Sleep(time.Millisecond)
							continue
						}
						c.SetDeadline(time.Now().Add(20 * time.Millisecond))
						c.Write([]byte("ping\n"))
						c.Read(make([]byte, 5))
						c.Close()
					}
				})
			}
			wg.Go(func() {
				for i := 0; ctx.Err() == nil; i++ {
					switch i % 4 {
					case 0:
						fn.Partition("a", "b")
					case 1:
						fn.Delay("c", "b", time.Millisecond)
					case 2:
						fn.Reset("b", "d")
					case 3:
						fn.Heal()
					}
					time.Sleep(time.Millisecond)
				}
			})
			wg.Wait()
			fn.Heal()
			roundTrip(t, dial(t, fn.Node("a"), srv.addr()), "still works")
		})
	}
}
