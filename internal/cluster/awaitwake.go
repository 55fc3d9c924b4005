package cluster

import (
	"sync"
	"sync/atomic"

	"meshgo.dev/mesh/internal/continuity"
)

// awaitWake wakes the typed-work handles waiting on a record's outcome
// (AwaitTyped) when the record ends on this node, so a Result returns as
// soon as the outcome is here instead of at its next poll. The poll stays as
// the fallback for the transitions that do not pass through wake (a record
// closed because its owner was lost, a retention eviction).
type awaitWake struct {
	waiting atomic.Int32 // registered waiters; wake costs one load when 0

	mu sync.Mutex
	by map[string][]chan struct{} // request key -> waiters, each woken once
}

// add registers a waiter for key and returns the channel wake closes.
func (a *awaitWake) add(key string) chan struct{} {
	ch := make(chan struct{})
	a.mu.Lock()
	if a.by == nil {
		a.by = map[string][]chan struct{}{}
	}
	a.by[key] = append(a.by[key], ch)
	a.mu.Unlock()
	a.waiting.Add(1)
	return ch
}

// remove forgets a waiter that stops waiting; a waiter already woken is
// gone.
func (a *awaitWake) remove(key string, ch chan struct{}) {
	a.mu.Lock()
	defer a.mu.Unlock()
	chs := a.by[key]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i], chs[i+1:]...)
			a.waiting.Add(-1)
			break
		}
	}
	if len(chs) == 0 {
		delete(a.by, key)
	} else {
		a.by[key] = chs
	}
}

// wake wakes every waiter of rec's key when rec is a work record that
// ended.
func (a *awaitWake) wake(rec *continuity.Record) {
	if a.waiting.Load() == 0 || rec.Kind != continuity.KindWork || !rec.Phase.Terminal() {
		return
	}
	a.mu.Lock()
	chs := a.by[rec.RequestKey]
	delete(a.by, rec.RequestKey)
	a.waiting.Add(-int32(len(chs)))
	a.mu.Unlock()
	for _, ch := range chs {
		close(ch)
	}
}
