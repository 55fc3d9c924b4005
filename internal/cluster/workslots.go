package cluster

import (
	"context"
	"sync"

	"meshgo.dev/mesh/internal/continuity"
)

// workQueuePerSlot is how many executions of work submitted on this node
// (and owned here) may wait per running slot before Submit waits for room:
// enough to keep every slot busy between two submissions, small enough that
// a burst of submissions holds a bounded number of records in memory.
const workQueuePerSlot = 4

// workSlots bounds the declared-work executions running on a node at once
// (Config.MaxRunningWork). An execution started while every slot is taken
// waits in a FIFO queue, its record still pending; no goroutine is held for
// it. Each slot is one goroutine that runs executions until the queue is
// empty, so a node runs at most limit goroutines for declared work however
// many records are submitted. Startup, recovered, retried and peer-dispatched
// executions share the same slots; only new submissions on this node wait
// for room in the queue (waitRoom), since the others are already
// acknowledged and must not be refused.
type workSlots struct {
	limit int // slots
	room  int // queued executions admitted before waitRoom waits

	mu       sync.Mutex    // guards running, queue, head, roomFree
	running  int           // slots taken (goroutines running executions)
	queue    []func()      // waiting executions; queue[head:] are live
	head     int           // first live entry of queue
	roomFree chan struct{} // closed when an execution leaves the queue; nil when nobody waits
}

func newWorkSlots(limit int) *workSlots {
	return &workSlots{limit: limit, room: limit * workQueuePerSlot}
}

// start runs job on a free slot, or queues it for the next slot to free.
// It never blocks.
func (s *workSlots) start(job func()) {
	s.mu.Lock()
	if s.running < s.limit {
		s.running++
		s.mu.Unlock()
		go s.loop(job)
		return
	}
	s.queue = append(s.queue, job)
	s.mu.Unlock()
}

// loop runs job, then queued jobs in order, until the queue is empty; then
// it gives its slot back.
func (s *workSlots) loop(job func()) {
	for job != nil {
		job()
		job = s.next()
	}
}

// next takes the oldest queued job, or releases the caller's slot and
// returns nil when none waits.
func (s *workSlots) next() func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.running--
		s.queue, s.head = s.queue[:0], 0
		if cap(s.queue) > s.room+1024 {
			s.queue = nil // a burst beyond the room (recovered work) is not kept
		}
		return nil
	}
	job := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	if s.head >= 1024 && s.head*2 >= len(s.queue) {
		// Reuse the drained front of the backing array.
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
	if s.roomFree != nil {
		close(s.roomFree)
		s.roomFree = nil
	}
	return job
}

// queued returns the number of executions waiting for a slot.
func (s *workSlots) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// waitRoom waits until fewer than room executions are queued, so a new
// submission owned by this node may be stored. It returns the reason to
// refuse the submission with when ctx ends first (work_queue_full) or the
// node stops (node_shutting_down).
func (s *workSlots) waitRoom(ctx context.Context, stop <-chan struct{}) error {
	for {
		s.mu.Lock()
		if len(s.queue)-s.head < s.room {
			s.mu.Unlock()
			return nil
		}
		if s.roomFree == nil {
			s.roomFree = make(chan struct{})
		}
		ch := s.roomFree
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return &continuity.Error{Reason: continuity.ReasonWorkQueueFull}
		case <-stop:
			return &continuity.Error{Reason: continuity.ReasonShuttingDown}
		}
	}
}

// admitWork waits, when the submission of work under key would be owned by
// this node and its work queue is full, for room in the queue (waitRoom).
// Submissions owned by the peer are bounded by the peer's slots.
func (n *Node) admitWork(ctx context.Context, key string) error {
	if n.slots.queued() < n.slots.room {
		return nil
	}
	if continuity.PlaceCanonical(key, *n.placement.Load()).Owner != n.self {
		return nil
	}
	return n.slots.waitRoom(ctx, n.ctx.Done())
}
