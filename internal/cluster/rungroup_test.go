package cluster

import (
	"sync"
	"testing"
	"time"
)

func TestRunGroupDrainsThenRefuses(t *testing.T) {
	var g runGroup
	if !g.add() || !g.add() {
		t.Fatal("an open group refused a handler")
	}
	drained := g.closeAndWait()
	if !g.add() { // a running handler may still start another while draining
		t.Fatal("a draining group refused a handler")
	}
	for range 3 {
		select {
		case <-drained:
			t.Fatal("drained with handlers running")
		default:
		}
		g.done()
	}
	select {
	case <-drained:
	case <-time.After(time.Second):
		t.Fatal("not drained after the last handler ended")
	}
	if g.add() {
		t.Fatal("a drained group started a handler")
	}
	if again := g.closeAndWait(); again != drained {
		t.Fatal("closing twice gave another channel")
	}
}

// Starting handlers while the group closes is safe (the race detector
// checks it), and nothing starts after the group drained.
func TestRunGroupConcurrentCloseIsSafe(t *testing.T) {
	for range 50 {
		var g runGroup
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 100 {
					if g.add() {
						g.done()
					}
				}
			}()
		}
		<-g.closeAndWait()
		if g.add() {
			t.Fatal("a handler started after the group drained")
		}
		wg.Wait()
	}
}
