package cluster

import (
	"slices"
	"testing"
)

// The sessions the request path reads without a lock follow the sessions
// map through every change, sorted by peer name, with the placement
// membership published beside them.
func TestLinkedSessionsFollowTheSessionsMap(t *testing.T) {
	n := &Node{self: "a@h:1", sessions: map[string]*session{}}
	if got := n.appendSessions(nil); len(got) != 0 || n.session("b@h:1") != nil {
		t.Fatalf("a node that never linked has sessions %v", got)
	}
	peers := func() []string {
		var out []string
		for _, s := range n.appendSessions(nil) {
			out = append(out, s.peer)
		}
		return out
	}
	c, b := &session{peer: "c@h:1"}, &session{peer: "b@h:1"}
	for _, step := range []struct {
		change func()
		want   []string
	}{
		{func() { n.sessions[c.peer] = c }, []string{"c@h:1"}},
		{func() { n.sessions[b.peer] = b }, []string{"b@h:1", "c@h:1"}},
		{func() { delete(n.sessions, c.peer) }, []string{"b@h:1"}},
		{func() { delete(n.sessions, b.peer) }, nil},
	} {
		n.mu.Lock()
		step.change()
		n.sessionsChangedLocked()
		n.mu.Unlock()
		if got := peers(); !slices.Equal(got, step.want) {
			t.Fatalf("linked sessions %v, want %v", got, step.want)
		}
		for _, s := range []*session{b, c} {
			if got, want := n.session(s.peer), n.sessions[s.peer]; got != want {
				t.Fatalf("session(%s) = %p, the map holds %p", s.peer, got, want)
			}
		}
		// The canonical membership's order is placement's own; its members
		// are the node and its linked peers.
		if got, want := slices.Sorted(slices.Values(*n.placement.Load())), append([]string{"a@h:1"}, step.want...); !slices.Equal(got, want) {
			t.Fatalf("placement membership %v, want %v", got, want)
		}
	}
	// What a reader already holds is never changed by a later update.
	n.mu.Lock()
	n.sessions[b.peer], n.sessions[c.peer] = b, c
	n.sessionsChangedLocked()
	n.mu.Unlock()
	held := n.appendSessions(nil)
	n.mu.Lock()
	delete(n.sessions, b.peer)
	n.sessionsChangedLocked()
	n.mu.Unlock()
	if len(held) != 2 || held[0] != b || held[1] != c {
		t.Fatalf("a copy taken before the change reads %v", held)
	}
}
