package meshtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// eachMode runs body against a TCP FaultNet and, inside a synctest bubble,
// against a memory one. leaks asks for the goroutine check in TCP mode; in
// the bubble synctest itself fails the test if a goroutine outlives it.
func eachMode(t *testing.T, leaks bool, body func(t *testing.T, fn *FaultNet)) {
	t.Run("tcp", func(t *testing.T) {
		if leaks {
			checkNoLeak(t)
		}
		fn := New()
		t.Cleanup(fn.Close)
		body(t, fn)
	})
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			fn := NewMemory()
			t.Cleanup(fn.Close)
			body(t, fn)
		})
	})
}

// inBubble runs body inside a synctest bubble with a fresh memory FaultNet.
func inBubble(t *testing.T, body func(t *testing.T, fn *FaultNet)) {
	synctest.Test(t, func(t *testing.T) {
		fn := NewMemory()
		t.Cleanup(fn.Close)
		body(t, fn)
	})
}

// pair returns a dialed connection from a to b and the connection b accepted.
func pair(t *testing.T, fn *FaultNet) (client, server net.Conn) {
	t.Helper()
	ln, err := fn.Node("b").Listen("tcp", "127.0.0.1:4370")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	client = dial(t, fn.Node("a"), "127.0.0.1:4370")
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

func TestMemoryNetAddresses(t *testing.T) {
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		if !fn.Memory() || New().Memory() {
			t.Fatal("Memory does not tell the modes apart")
		}
		client, server := pair(t, fn)
		if got := server.LocalAddr().String(); got != "127.0.0.1:4370" {
			t.Errorf("accepted local address %s", got)
		}
		if client.LocalAddr().String() != server.RemoteAddr().String() || client.RemoteAddr().String() != server.LocalAddr().String() {
			t.Errorf("addresses do not mirror: client %s→%s, server %s→%s",
				client.LocalAddr(), client.RemoteAddr(), server.LocalAddr(), server.RemoteAddr())
		}
		if _, ok := client.LocalAddr().(*net.TCPAddr); !ok {
			t.Errorf("local address is a %T, want *net.TCPAddr", client.LocalAddr())
		}

		// The same port on another IP is another address; the same address twice is in use.
		ln6, err := fn.Node("c").Listen("tcp", "[::1]:4370")
		if err != nil {
			t.Fatalf("listen on ::1 beside 127.0.0.1: %v", err)
		}
		defer ln6.Close()
		if _, err := fn.Node("d").Listen("tcp", "127.0.0.1:4370"); !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("second listen on one address = %v; want EADDRINUSE", err)
		}
		if _, err := fn.Node("d").Listen("tcp", "example.com:1"); err == nil {
			t.Error("listen on a host name other than localhost succeeded")
		}

		// A port nobody listens on refuses the dial.
		if _, err := fn.Node("a").DialContext(t.Context(), "tcp", "127.0.0.1:1"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial to no listener = %v; want ECONNREFUSED", err)
		}
		// localhost reaches the IPv6 listener when no IPv4 one exists on the port.
		ln7, err := fn.Node("e").Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln7.Close()
		_, port, _ := net.SplitHostPort(ln7.Addr().String())
		if port == "0" {
			t.Fatalf("port 0 was not replaced: %s", ln7.Addr())
		}
		c := dial(t, fn.Node("a"), net.JoinHostPort("localhost", port))
		if _, r, _ := ConnNodes(c); r != "e" {
			t.Errorf("dial to localhost:%s reached %q, want e", port, r)
		}
	})
}

func TestMemoryNetCloseGivesEOFAfterData(t *testing.T) {
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		client, server := pair(t, fn)
		if _, err := client.Write([]byte("last words")); err != nil {
			t.Fatal(err)
		}
		client.Close()
		got, err := io.ReadAll(server)
		if err != nil || string(got) != "last words" {
			t.Fatalf("read after peer close = %q, %v; want the data then EOF", got, err)
		}
		if _, err := server.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("write to a closed peer = %v; want ECONNRESET", err)
		}
		if _, err := client.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Errorf("read on a closed conn = %v; want net.ErrClosed", err)
		}
		if err := client.Close(); err == nil {
			t.Error("second Close returned nil")
		}
	})
}

func TestMemoryNetBackpressure(t *testing.T) {
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		client, server := pair(t, fn)
		big := bytes.Repeat([]byte("m"), memBufferSize+1000)
		done := make(chan error, 1)
		go func() {
			_, err := client.Write(big)
			done <- err
		}()
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("a write larger than the buffer returned before any read: %v", err)
		default:
		}
		got := make([]byte, len(big))
		if _, err := io.ReadFull(server, got); err != nil || !bytes.Equal(got, big) {
			t.Fatalf("read %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("write after the reader drained: %v", err)
		}

		// A full buffer and a write deadline: the write gives up at the deadline.
		client.Write(big[:memBufferSize])
		start := time.Now()
		client.SetWriteDeadline(start.Add(time.Minute))
		if n, err := client.Write([]byte("x")); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write into a full buffer = %d, %v; want deadline exceeded", n, err)
		}
		if elapsed := time.Since(start); elapsed != time.Minute {
			t.Errorf("write gave up after %v on the bubble's clock, want exactly 1m", elapsed)
		}
	})
}

// The clock of a bubble advances while nodes wait on the memory network, so
// long deadlines and delays cost no real time and are exact.
func TestMemoryNetFollowsTheBubbleClock(t *testing.T) {
	realStart := time.Now()
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		client, server := pair(t, fn)
		start := time.Now()
		server.SetReadDeadline(start.Add(time.Hour))
		if _, err := server.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read with no data = %v; want deadline exceeded", err)
		}
		if elapsed := time.Since(start); elapsed != time.Hour {
			t.Errorf("read deadline of 1h fired after %v", elapsed)
		}
		server.SetReadDeadline(time.Time{})

		fn.Delay("a", "b", 10*time.Minute)
		start = time.Now()
		if _, err := client.Write([]byte("late")); err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed != 10*time.Minute {
			t.Errorf("delayed write took %v, want exactly 10m", elapsed)
		}

		// A write blocked by a partition waits until Heal, however long.
		fn.Partition("a", "b")
		healed := make(chan time.Time, 1)
		go func() {
			time.Sleep(3 * time.Hour)
			healed <- time.Now()
			fn.Heal()
		}()
		start = time.Now()
		if _, err := client.Write([]byte("x")); err != nil {
			t.Fatalf("write across a healed partition: %v", err)
		}
		if at := <-healed; time.Since(start) != 3*time.Hour || time.Now() != at {
			t.Errorf("partitioned write resumed after %v, the heal came after 3h", time.Since(start))
		}
	})
	if elapsed := time.Since(realStart); elapsed > 10*time.Second {
		t.Errorf("hours of bubble time took %v of real time", elapsed)
	}
}

func TestMemoryNetListenerClose(t *testing.T) {
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		ln, err := fn.Node("b").Listen("tcp", "0.0.0.0:4370")
		if err != nil {
			t.Fatal(err)
		}
		pending := dial(t, fn.Node("a"), "[::1]:4370") // a wildcard listener takes every IP
		accepted := make(chan error, 1)
		go func() {
			_, err := ln.Accept()
			if err == nil {
				_, err = ln.Accept()
			}
			accepted <- err
		}()
		synctest.Wait()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-accepted; !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
		}
		if _, err := fn.Node("a").DialContext(t.Context(), "tcp", "127.0.0.1:4370"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("dial after the listener closed = %v; want ECONNREFUSED", err)
		}
		// The accepted connection outlives its listener.
		if _, err := pending.Write([]byte("x")); err != nil {
			t.Errorf("write on a connection accepted before Close: %v", err)
		}
		// The address is free again.
		ln2, err := fn.Node("c").Listen("tcp", "0.0.0.0:4370")
		if err != nil {
			t.Fatalf("listen again after Close: %v", err)
		}
		ln2.Close()
	})
}

func TestMemoryNetDialHonoursContext(t *testing.T) {
	inBubble(t, func(t *testing.T, fn *FaultNet) {
		ln, err := fn.Node("b").Listen("tcp", "127.0.0.1:4370")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if c, err := fn.Node("a").DialContext(ctx, "tcp", "127.0.0.1:4370"); !errors.Is(err, context.Canceled) {
			if c != nil {
				c.Close()
			}
			t.Fatalf("dial with a cancelled context = %v; want context.Canceled", err)
		}
	})
}

// Outside a bubble the memory network runs on the real clock.
func TestMemoryNetOutsideABubble(t *testing.T) {
	checkNoLeak(t)
	fn := NewMemory()
	defer fn.Close()
	srv := startEcho(t, fn.Node("b"), "127.0.0.1:0")
	c := dial(t, fn.Node("a"), srv.addr())
	roundTrip(t, c, "hello")
	fn.Partition("a", "b")
	expectSilence(t, c)
	c.SetWriteDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("write during partition = %v; want deadline exceeded", err)
	}
	c.SetWriteDeadline(time.Time{})
	fn.Heal()
	roundTrip(t, c, "healed")
}
