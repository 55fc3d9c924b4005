package cluster

import (
	"bytes"
	"sync"
	"sync/atomic"

	"meshgo.dev/mesh/internal/continuity"
)

// awaitWake hands the ended version of a work record to every claim on its
// key (a typed-work handle's Claim, registered before its submission or
// lookup) and wakes them: a Result returns as soon as the outcome is here,
// and has it even if retention evicts the record before the waiting
// goroutine runs again. Every ended version of a work record must pass
// through wake (this node's transitions in replicate, the peer's in merge):
// a claim waits for nothing else.
type awaitWake struct {
	waiting atomic.Int32 // registered waiters; wake costs one load when 0

	mu sync.Mutex
	by map[string][]*awaiter // request key -> waiters, each woken once
}

// awaiter is one registered waiter. wake sets rec, the ended version, and
// then closes done; rec is read only after done is closed.
type awaiter struct {
	key  string
	done chan struct{}
	rec  continuity.Record
}

// ended returns the version wake handed over, if it has.
func (w *awaiter) ended() (*continuity.Record, bool) {
	select {
	case <-w.done:
		return &w.rec, true
	default:
		return nil, false
	}
}

// add registers a waiter for key.
func (a *awaitWake) add(key string) *awaiter {
	w := &awaiter{key: key, done: make(chan struct{})}
	a.mu.Lock()
	if a.by == nil {
		a.by = map[string][]*awaiter{}
	}
	a.by[key] = append(a.by[key], w)
	a.mu.Unlock()
	a.waiting.Add(1)
	return w
}

// remove forgets a waiter that stops waiting; a waiter already woken is
// gone.
func (a *awaitWake) remove(w *awaiter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ws := a.by[w.key]
	for i, c := range ws {
		if c == w {
			ws = append(ws[:i], ws[i+1:]...)
			a.waiting.Add(-1)
			break
		}
	}
	if len(ws) == 0 {
		delete(a.by, w.key)
	} else {
		a.by[w.key] = ws
	}
}

// wake hands rec to every waiter of its key and wakes them, when rec is a
// work record that ended.
func (a *awaitWake) wake(rec *continuity.Record) {
	if a.waiting.Load() == 0 || rec.Kind != continuity.KindWork || !rec.Phase.Terminal() {
		return
	}
	a.mu.Lock()
	ws := a.by[rec.RequestKey]
	delete(a.by, rec.RequestKey)
	a.waiting.Add(-int32(len(ws)))
	a.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	// The waiters keep their copy past the caller's use of rec; the output
	// is the one slice a caller may reuse.
	kept := *rec
	kept.Output = bytes.Clone(rec.Output)
	for _, w := range ws {
		w.rec = kept
		close(w.done)
	}
}
