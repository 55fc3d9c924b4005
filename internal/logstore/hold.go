package logstore

import "time"

// commitHold decides whether the writer holds a group commit back, briefly,
// for acknowledgements that are on their way. A flush costs the machine
// about as much CPU whether it carries one acknowledgement or twenty, so on
// a busy node a flush begun with two callers waiting, while the previous
// ones carried ten, spends a whole flush on two. The writer then waits a
// short, bounded time (a fraction of the measured write time, never more
// than max) or until enough callers wait. A node whose recent writes
// carried few acknowledgements (an idle or lightly loaded one) is never
// held: its callers would only wait longer.
//
// It is a pure policy: the writer feeds it what each write carried and how
// long it took, and asks it before each write; it reads no clock.
type commitHold struct {
	// siblings: a write is held only while recent writes carried at
	// least this many acknowledgements on average.
	siblings int
	// share: a write is held at most the mean write time divided by
	// share, and never more than max.
	share int
	max   time.Duration

	carried int64         // moving mean of acknowledgements per write, in 1/16ths
	took    time.Duration // moving mean of a write's duration (write and fsync)
}

// Defaults of the hold. On the 2-CPU VM of bench/RESULTS.md a group commit
// takes 150–500 µs of wall time and 60–100 µs of CPU; a tenth of it is long
// enough for callers released by the previous write to come back, and short
// beside the fsync every caller waits for anyway.
const (
	holdSiblings = 4
	holdShare    = 10
	holdMax      = 50 * time.Microsecond
)

func defaultHold() commitHold {
	return commitHold{siblings: holdSiblings, share: holdShare, max: holdMax}
}

// plan returns how long a write may be held with waiting acknowledgements
// already waiting, and how many waiting acknowledgements end the hold
// early. A zero duration means: write now.
func (h *commitHold) plan(waiting int) (hold time.Duration, enough int) {
	if h.max <= 0 || h.share <= 0 || h.siblings <= 0 {
		return 0, 0
	}
	if h.carried < int64(h.siblings)*16 {
		return 0, 0
	}
	// Enough: three quarters of what recent writes carried.
	enough = max(int(h.carried*3/4/16), 2)
	if waiting >= enough {
		return 0, 0
	}
	hold = min(h.took/time.Duration(h.share), h.max)
	return hold, enough
}

// wrote records a write that carried acks acknowledgements and took took.
// The means move by an eighth of the difference per write, so a burst that
// ends stops the holds within a few writes.
func (h *commitHold) wrote(acks int, took time.Duration) {
	step := (int64(acks)*16 - h.carried) / 8
	switch {
	case step == 0 && int64(acks)*16 > h.carried:
		step = 1 // the mean reaches a steady load, not just near it
	case step == 0 && int64(acks)*16 < h.carried:
		step = -1
	}
	h.carried += step
	if h.took == 0 {
		h.took = took
		return
	}
	h.took += (took - h.took) / 8
}
