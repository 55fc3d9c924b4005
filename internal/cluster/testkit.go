package cluster

import (
	"fmt"
	"time"
)

// Hooks for meshtest/clustertest, the users' test kit: they break a node
// running in the test's own process the way a signal breaks a process. They
// are not part of the public API (the mesh package does not re-export them).

// Crash stops n abruptly, as SIGKILL stops a process: no goodbye to the
// peer, nothing flushed, its links and listener closed at once. It returns
// once every goroutine n started has ended, so a node started next on the
// same state directory is alone with it, or an error after timeout.
func Crash(n *Node, timeout time.Duration) error {
	n.crash()
	select {
	case <-n.gone():
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("goroutines of %s still running %v after it was killed", n.Name(), timeout)
	}
}

// Paused makes n's pause detector see a gap of d since its last tick, as
// a process resumed after SIGSTOP does on its first tick.
func Paused(n *Node, d time.Duration) {
	n.lastTick.Store(n.mono() - int64(d))
}

// gone returns a channel closed once every goroutine n started has
// returned (after a crash or a stop).
func (n *Node) gone() <-chan struct{} {
	done := make(chan struct{})
	go func() {
		<-n.wg.closeAndWait()
		<-n.running.closeAndWait()
		n.startups.Wait()
		close(done)
	}()
	return done
}
