package recordlog

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// DirName is the conventional name of the log's directory inside a node's
// state directory.
const DirName = "records"

// LockName is the file in the log directory that an open log holds locked.
const LockName = "LOCK"

// File names in the log directory. A segment is "<seq>.seg" (20 decimal
// digits, so names sort by sequence). A compacted segment "<seq>.cseg" holds
// the live entries of every segment up to and including seq and supersedes
// them all; it becomes visible only by an atomic rename of "<seq>.cseg.tmp"
// after that file is fsynced. Other names are left alone.
const (
	segSuffix     = ".seg"
	compactSuffix = ".cseg"
	tmpSuffix     = ".tmp"
)

// segment is one file of the log.
type segment struct {
	seq       uint64
	compacted bool
}

func (s segment) name() string {
	if s.compacted {
		return fmt.Sprintf("%020d%s", s.seq, compactSuffix)
	}
	return fmt.Sprintf("%020d%s", s.seq, segSuffix)
}

func (s segment) path(dir string) string { return filepath.Join(dir, s.name()) }

// parseName reads a log file name; ok is false for names the log does not own.
func parseName(name string) (seg segment, tmp, ok bool) {
	base, tmp := strings.CutSuffix(name, tmpSuffix)
	var digits string
	switch {
	case strings.HasSuffix(base, compactSuffix):
		digits, seg.compacted = strings.TrimSuffix(base, compactSuffix), true
	case strings.HasSuffix(base, segSuffix):
		digits = strings.TrimSuffix(base, segSuffix)
	default:
		return segment{}, false, false
	}
	if len(digits) != 20 {
		return segment{}, false, false
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return segment{}, false, false
	}
	seg.seq = seq
	return seg, tmp, true
}

// layout is what a directory listing says the log consists of.
type layout struct {
	live     []segment // to replay, in order: the newest compacted segment, then later segments
	obsolete []string  // names to remove: temporaries and superseded segments
}

// planLayout decides, from a directory listing, which files make up the log.
// The newest compacted segment supersedes every file with a sequence number
// at or below its own.
func planLayout(names []string) layout {
	var segs []segment
	var out layout
	var base segment
	haveBase := false
	for _, n := range names {
		s, tmp, ok := parseName(n)
		if !ok {
			continue
		}
		if tmp {
			out.obsolete = append(out.obsolete, n)
			continue
		}
		if s.compacted && (!haveBase || s.seq > base.seq) {
			base, haveBase = s, true
		}
		segs = append(segs, s)
	}
	slices.SortFunc(segs, func(a, b segment) int {
		if a.seq != b.seq {
			if a.seq < b.seq {
				return -1
			}
			return 1
		}
		if a.compacted == b.compacted {
			return 0
		}
		if a.compacted {
			return -1
		}
		return 1
	})
	if haveBase {
		out.live = append(out.live, base)
	}
	for _, s := range segs {
		switch {
		case haveBase && s == base:
		case haveBase && s.seq <= base.seq:
			out.obsolete = append(out.obsolete, s.name())
		default:
			out.live = append(out.live, s)
		}
	}
	slices.Sort(out.obsolete)
	return out
}
