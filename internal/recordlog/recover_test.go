package recordlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// buildLog writes entries, one Append each, into a fresh log in dir with the
// given segment size and returns the segment names (oldest first) and the
// offset where the last entry starts in the last segment. If that entry
// filled its segment, the empty segment started after it is removed (as if
// the process had died before rotating), so the last entry is in the last
// segment.
func buildLog(t *testing.T, dir string, segSize int64, entries []Entry) (names []string, lastStart int64) {
	t.Helper()
	l, _, _ := openLog(t, dir, Options{SegmentSize: segSize})
	var lastSeq uint64
	for _, e := range entries {
		lastSeq, lastStart = l.activeForTest()
		mustAppend(t, l, e)
	}
	seq, size := l.activeForTest()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if seq != lastSeq {
		if size != 0 {
			t.Fatalf("segment %d holds %d bytes after the last append", seq, size)
		}
		if err := os.Remove(segment{seq: seq}.path(dir)); err != nil {
			t.Fatal(err)
		}
	}
	return segmentFiles(t, dir), lastStart
}

func (l *Log) activeForTest() (uint64, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.activeSeq, l.activeSize
}

// segmentFiles lists dir without the lock file.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := OSFS{}.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == LockName })
	slices.Sort(names)
	return names
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestTornTailAtEveryOffset cuts the last segment at every byte of its last
// entry: each time Open keeps every earlier entry, reports the cut, leaves
// the file ending at the previous entry, and appends after it cleanly.
func TestTornTailAtEveryOffset(t *testing.T) {
	var entries []Entry
	for i := range 12 {
		entries = append(entries, put(fmt.Sprintf("key-%02d", i), strings.Repeat(string(rune('a'+i)), 10+i*7)))
	}
	entries = append(entries, evict("key-03"), put("key-last", "the last entry's value"))
	src := t.TempDir()
	names, lastStart := buildLog(t, src, 256, entries)
	if len(names) < 3 {
		t.Fatalf("want several segments, got %v", names)
	}
	lastName := names[len(names)-1]
	whole, err := os.ReadFile(filepath.Join(src, lastName))
	if err != nil {
		t.Fatal(err)
	}
	end := int64(len(whole))
	if lastStart <= 0 || lastStart >= end {
		t.Fatalf("last entry at %d of a %d-byte segment: the test wants it not alone", lastStart, end)
	}
	want := state{}
	for _, e := range entries[:len(entries)-1] {
		want.apply(e)
	}
	for cut := lastStart; cut < end; cut++ {
		dir := t.TempDir()
		copyDir(t, src, dir)
		path := filepath.Join(dir, lastName)
		if err := os.WriteFile(path, whole[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		got := state{}
		l, rec, err := Open(dir, Options{}, got.apply)
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		if !got.equal(want) {
			t.Fatalf("cut at %d: replayed %v, want %v", cut, got, want)
		}
		// The last batch is a marker and the entry: a cut inside the
		// marker removes it too; a cut inside the entry leaves the marker
		// of an empty batch.
		truncAt := lastStart
		if cut >= lastStart+markerSize {
			truncAt = lastStart + markerSize
		}
		wantCut := cut - truncAt
		if rec.TruncatedBytes != wantCut || (wantCut > 0 && (rec.TruncatedFile != lastName || rec.TruncatedAt != truncAt)) {
			t.Fatalf("cut at %d: Recovery %+v; want %d bytes cut from %s at %d", cut, rec, wantCut, lastName, truncAt)
		}
		if rec.Entries != int64(len(entries)-1) || rec.Segments != len(names) {
			t.Fatalf("cut at %d: Recovery %+v; want %d entries from %d segments", cut, rec, len(entries)-1, len(names))
		}
		if st, err := os.Stat(path); err != nil || st.Size() != truncAt {
			t.Fatalf("cut at %d: segment is %v bytes (%v) after Open, want %d", cut, st.Size(), err, truncAt)
		}
		mustAppend(t, l, put("after", "recovery"))
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		again, rec2 := replayState(t, dir)
		want2 := state{"after": "recovery"}
		for k, v := range want {
			want2[k] = v
		}
		if !again.equal(want2) || rec2.TruncatedBytes != 0 {
			t.Fatalf("cut at %d: second Open replayed %v (recovery %+v), want %v with nothing cut", cut, again, rec2, want2)
		}
	}
}

// TestDamagedTailIsTruncated: other shapes of a torn last write (zeroes
// after the last entry, a flipped bit in it, a length field of garbage) are
// cut at the first bad frame too.
func TestDamagedTailIsTruncated(t *testing.T) {
	src := t.TempDir()
	names, lastStart := buildLog(t, src, DefaultSegmentSize, []Entry{put("a", "1"), put("b", "2"), put("c", "3")})
	name := names[0]
	whole, err := os.ReadFile(filepath.Join(src, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		damage  func([]byte) []byte
		wantAt  int64
		wantErr string
		want    state
	}{
		{"zeroes after the end", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, int64(len(whole)), "length 0 out of range", state{"a": "1", "b": "2", "c": "3"}},
		{"flipped bit in the last value", func(b []byte) []byte { b[len(b)-1] ^= 0x10; return b }, lastStart + markerSize, "checksum mismatch", state{"a": "1", "b": "2"}},
		{"huge length", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[lastStart:], 1<<31); return b }, lastStart, "out of range", state{"a": "1", "b": "2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, name), tc.damage(slices.Clone(whole)), 0o600); err != nil {
				t.Fatal(err)
			}
			got, rec := replayState(t, dir)
			if !got.equal(tc.want) || rec.TruncatedAt != tc.wantAt || !strings.Contains(rec.TruncateReason, tc.wantErr) || rec.TruncatedBytes == 0 {
				t.Fatalf("replayed %v, recovery %+v; want %v cut at %d for %q", got, rec, tc.want, tc.wantAt, tc.wantErr)
			}
		})
	}
}

// TestCorruptionBeforeTheLastSegmentIsAnError: damage in a sealed segment is
// never skipped: Open fails with ErrCorrupt naming the file and the offset
// of the damaged entry, and changes nothing on disk.
func TestCorruptionBeforeTheLastSegmentIsAnError(t *testing.T) {
	var entries []Entry
	for i := range 20 {
		entries = append(entries, put(fmt.Sprintf("k%02d", i), strings.Repeat("v", 30)))
	}
	dir := t.TempDir()
	names, _ := buildLog(t, dir, 200, entries)
	if len(names) < 3 {
		t.Fatalf("want at least 3 segments, got %v", names)
	}
	victim := filepath.Join(dir, names[1])
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	// Damage the second entry of the segment.
	first := int64(frameHeaderSize + binary.LittleEndian.Uint32(b))
	b[first+frameHeaderSize+5] ^= 0xff
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(dir, Options{}, state{}.apply)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v; want ErrCorrupt", err)
	}
	for _, want := range []string{victim, fmt.Sprintf("offset %d", first), "checksum mismatch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	after, _ := os.ReadFile(victim)
	if !slices.Equal(after, b) || !slices.Equal(segmentFiles(t, dir), names) {
		t.Fatal("a failed Open changed the directory")
	}
}

// TestUnknownFormatInLastSegmentIsAnError: a well-checksummed entry of a
// format this build does not read is not a torn write, even at the tail.
func TestUnknownFormatInLastSegmentIsAnError(t *testing.T) {
	dir := t.TempDir()
	names, _ := buildLog(t, dir, DefaultSegmentSize, []Entry{put("a", "1")})
	body := []byte{formatVersion + 1, byte(KindPut), 1, 'b'}
	frame := binary.LittleEndian.AppendUint32(nil, uint32(len(body)))
	frame = binary.LittleEndian.AppendUint32(frame, crc32.Checksum(body, castagnoli))
	frame = append(frame, body...)
	path := filepath.Join(dir, names[0])
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(frame)
	f.Close()
	_, _, err = Open(dir, Options{}, state{}.apply)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "unknown entry format version 2") || !strings.Contains(err.Error(), path) {
		t.Fatalf("Open = %v; want ErrCorrupt naming the version and %s", err, path)
	}
}

func TestReplayErrorStopsOpen(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, DefaultSegmentSize, []Entry{put("a", "1"), put("b", "2")})
	boom := errors.New("boom")
	_, _, err := Open(dir, Options{}, func(e Entry) error {
		if e.Key == "b" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "offset 49") {
		t.Fatalf("Open = %v; want the replay error with the entry's offset", err)
	}
}

func TestOpenIgnoresForeignFiles(t *testing.T) {
	dir := t.TempDir()
	buildLog(t, dir, DefaultSegmentSize, []Entry{put("a", "1")})
	for _, n := range []string{"README", "1.seg", "00000000000000000001.seg.bak"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("not ours"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := replayState(t, dir); !s.equal(state{"a": "1"}) {
		t.Fatalf("replayed %v", s)
	}
	if got := len(segmentFiles(t, dir)); got != 4 {
		t.Fatalf("%d files after Open, want the 3 foreign ones kept", got)
	}
}

func FuzzFrameReader(f *testing.F) {
	var seed []byte
	seed = appendFrame(seed, put("key", "value"))
	seed = appendFrame(seed, evict("key"))
	f.Add(seed)
	f.Add(seed[:len(seed)-3])
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add([]byte{formatVersion, byte(KindPut), 1, 'k', 'v'})
	f.Add([]byte{formatVersion, byte(KindEvict), 2, 'k', 'k'})
	f.Add([]byte{formatVersion, byte(KindPut), 0x81, 0x00, 'k', 'v'}) // overlong key length
	f.Add(appendMarker(appendFrame(appendMarker(nil, 0), put("k", "v")), markerSize+13))
	f.Add(appendMarker(nil, 0)[frameHeaderSize:])
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := newFrameReader(strings.NewReader(string(b)))
		var again []byte
		for {
			at := fr.offset
			e, n, err := fr.next()
			if err != nil {
				var fe *frameError
				if err.Error() != "EOF" && !errors.As(err, &fe) {
					t.Fatalf("unexpected error type %T: %v", err, err)
				}
				break
			}
			frame := reencode(t, e, at)
			if len(frame) != n {
				t.Fatalf("entry re-encodes to %d bytes, read %d", len(frame), n)
			}
			again = append(again, frame...)
		}
		if !slices.Equal(again, b[:len(again)]) {
			t.Fatal("decoded entries do not re-encode to the bytes read")
		}
		// The same bytes as a body whose checksum matched: the decoder
		// must reject it or read exactly what re-encodes to it.
		if len(b) >= minBodySize {
			if v, err := decodeBody(b); err == nil {
				e := v.entry()
				at := int64(-1)
				if e.Kind == kindBatch {
					at = int64(binary.LittleEndian.Uint64(e.Value))
				}
				if frame := reencode(t, e, at); !slices.Equal(frame[frameHeaderSize:], b) {
					t.Fatalf("body %x decodes to an entry that encodes as %x", b, frame[frameHeaderSize:])
				}
			}
		}
	})
}

// reencode encodes a decoded entry again: a batch marker as the marker of
// offset at, anything else as an entry Append would accept.
func reencode(t *testing.T, e Entry, at int64) []byte {
	if e.Kind == kindBatch {
		return appendMarker(nil, at)
	}
	if err := e.validate(); err != nil {
		t.Fatalf("decoded an entry Append would reject: %v", err)
	}
	return appendFrame(nil, e)
}

// TestDamageInAnEarlierBatchOfTheLastSegment: damage in the last segment
// followed by a later group commit hit bytes that had been fsynced: it is
// ErrCorrupt, naming the file, the damaged offset and the later batch, and
// the segment is not cut.
func TestDamageInAnEarlierBatchOfTheLastSegment(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{})
	var starts []int64
	for i := range 3 {
		_, at := l.activeForTest()
		starts = append(starts, at)
		mustAppend(t, l, put(fmt.Sprint("k", i), "value"))
	}
	l.Close()
	path := filepath.Join(dir, segment{seq: 1}.name())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := starts[1] + markerSize // the entry of the second batch
	b[damaged+frameHeaderSize+4] ^= 0x01
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = Open(dir, Options{}, state{}.apply)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v; want ErrCorrupt", err)
	}
	for _, want := range []string{path, fmt.Sprintf("offset %d", damaged), fmt.Sprintf("batch committed after it starts at offset %d", starts[2])} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if after, _ := os.ReadFile(path); !slices.Equal(after, b) {
		t.Fatal("Open cut a segment it reported as corrupt")
	}
}

// TestTornBatchWithLaterFramesIntact: the pages of one unsynced write reach
// the disk in any order, so in a torn last batch a damaged entry may be
// followed by intact ones of the same batch. That is a torn tail: the whole
// batch is cut and nothing is reported corrupt.
func TestTornBatchWithLaterFramesIntact(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{})
	mustAppend(t, l, put("before", "1"))
	_, start := l.activeForTest()
	mustAppend(t, l, put("x", strings.Repeat("1", 100)), put("y", strings.Repeat("2", 100)), put("z", strings.Repeat("3", 100)))
	l.Close()
	path := filepath.Join(dir, segment{seq: 1}.name())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The first entry of the batch never reached the disk; the rest did.
	first := start + markerSize
	clear(b[first : first+frameHeaderSize+50])
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, rec := replayState(t, dir)
	if !s.equal(state{"before": "1"}) || rec.TruncatedAt != first || rec.TruncatedBytes != int64(len(b))-first {
		t.Fatalf("replayed %v, recovery %+v; want only before, cut at %d", s, rec, first)
	}
}
