package meshtest

import (
	"net"
	"sync"
	"testing"
)

// SilentListener returns the address of a loopback listener that accepts
// connections and never writes a byte, to test timeouts against a peer that
// hangs. Connections are closed and the listener stopped when t ends.
func SilentListener(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				<-done
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}
