package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// ClassOverlappingPrimaries: two nodes acted as primary at overlapping
// times — both at one epoch, or the node of a lower epoch still acting after
// the node of a higher epoch had begun to.
const ClassOverlappingPrimaries = "overlapping_primaries"

// PrimaryAct is evidence that Node acted as primary at Epoch at Time: work
// it completed itself while its role was primary, as its diagnostics
// report it.
type PrimaryAct struct {
	Node  string    `json:"node"`
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
}

// Overlap is one pair of primary terms that overlapped: Early acted at a
// lower (or the same) epoch until EarlyLast, after Late began acting at
// LateFirst.
type Overlap struct {
	Early, Late           string
	EarlyEpoch, LateEpoch uint64
	LateFirst, EarlyLast  time.Time
}

// Length is how long the two acted as primary at once.
func (o Overlap) Length() time.Duration { return o.EarlyLast.Sub(o.LateFirst) }

func (o Overlap) violation() Violation {
	return Violation{Class: ClassOverlappingPrimaries, Detail: fmt.Sprintf(
		"%s acted as primary at epoch %d until %s, %v after %s began acting as primary at epoch %d (%s)",
		o.Early, o.EarlyEpoch, o.EarlyLast.Format("15:04:05.000"), o.Length().Round(time.Millisecond),
		o.Late, o.LateEpoch, o.LateFirst.Format("15:04:05.000"))}
}

// PrimaryOverlaps returns every overlap of two nodes' primary terms in
// acts. A term is a node's acts at one epoch, from the first to the last;
// two terms of different nodes overlap when they share an epoch, or when
// the term of the lower epoch has an act after the first act of the higher
// one (all times from one clock: the nodes run on one machine).
func PrimaryOverlaps(acts []PrimaryAct) []Overlap {
	type term struct {
		node        string
		epoch       uint64
		first, last time.Time
	}
	type id struct {
		node  string
		epoch uint64
	}
	terms := map[id]*term{}
	for _, a := range acts {
		k := id{a.Node, a.Epoch}
		tm := terms[k]
		if tm == nil {
			terms[k] = &term{a.Node, a.Epoch, a.Time, a.Time}
			continue
		}
		if a.Time.Before(tm.first) {
			tm.first = a.Time
		}
		if a.Time.After(tm.last) {
			tm.last = a.Time
		}
	}
	list := slices.SortedFunc(maps.Values(terms), func(a, b *term) int {
		return cmp.Or(cmp.Compare(a.epoch, b.epoch), cmp.Compare(a.node, b.node))
	})
	var out []Overlap
	for i, early := range list {
		for _, late := range list[i+1:] {
			if early.node == late.node {
				continue
			}
			if early.epoch == late.epoch {
				// One epoch, two primaries: the overlap is the shared time,
				// or a zero-length one when the terms are disjoint.
				lo, hi := late, early
				if early.first.After(late.first) {
					lo, hi = early, late
				}
				o := Overlap{Early: lo.node, Late: hi.node, EarlyEpoch: lo.epoch, LateEpoch: hi.epoch,
					LateFirst: hi.first, EarlyLast: hi.first}
				if lo.last.After(hi.first) {
					o.EarlyLast = lo.last
				}
				out = append(out, o)
				continue
			}
			if early.last.After(late.first) {
				out = append(out, Overlap{Early: early.node, Late: late.node, EarlyEpoch: early.epoch, LateEpoch: late.epoch,
					LateFirst: late.first, EarlyLast: early.last})
			}
		}
	}
	return out
}

// CheckPrimaryActs returns a violation for every overlap PrimaryOverlaps
// finds.
func CheckPrimaryActs(acts []PrimaryAct) []Violation {
	var out []Violation
	for _, o := range PrimaryOverlaps(acts) {
		out = append(out, o.violation())
	}
	return out
}
