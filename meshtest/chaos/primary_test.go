package chaos

import (
	"testing"
	"time"
)

func TestPrimaryOverlaps(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	clean := []PrimaryAct{
		{"a", 1, at(0)}, {"a", 1, at(100)}, {"a", 1, at(900)},
		{"b", 2, at(1000)}, {"b", 2, at(2000)},
		{"a", 3, at(2500)},
	}
	if v := CheckPrimaryActs(clean); len(v) != 0 {
		t.Fatalf("handovers without overlap reported: %v", v)
	}
	// The old primary completes work after the new one began.
	late := append(clean, PrimaryAct{"a", 1, at(1200)})
	o := PrimaryOverlaps(late)
	if len(o) != 1 || o[0].Early != "a" || o[0].Late != "b" || o[0].Length() != 200*time.Millisecond {
		t.Fatalf("overlaps %+v, want a@1 200ms after b@2", o)
	}
	// Two primaries at one epoch, even at disjoint times.
	same := []PrimaryAct{{"a", 4, at(0)}, {"b", 4, at(500)}}
	if v := CheckPrimaryActs(same); len(v) != 1 || v[0].Class != ClassOverlappingPrimaries {
		t.Fatalf("two primaries at one epoch: %v", v)
	}
}
