package recordlog

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"
)

// state folds entries the way a caller would: a put sets the key's value, an
// eviction removes it.
type state map[string]string

func (s state) apply(e Entry) error {
	switch e.Kind {
	case KindPut:
		s[e.Key] = string(e.Value)
	case KindEvict:
		delete(s, e.Key)
	}
	return nil
}

func (s state) filter(live func(string) bool) state {
	out := state{}
	for k, v := range s {
		if live(k) {
			out[k] = v
		}
	}
	return out
}

func (s state) String() string {
	keys := slices.Sorted(maps.Keys(s))
	out := "{"
	for i, k := range keys {
		if i > 0 {
			out += " "
		}
		out += k + "=" + s[k]
	}
	return out + "}"
}

func (s state) equal(o state) bool { return maps.Equal(s, o) }

// openLog opens dir and returns the log, the recovery and every replayed entry.
func openLog(t *testing.T, dir string, opt Options) (*Log, Recovery, []Entry) {
	t.Helper()
	var got []Entry
	l, rec, err := Open(dir, opt, func(e Entry) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l, rec, got
}

// replayState opens dir with the real file system, folds it and closes it.
func replayState(t *testing.T, dir string) (state, Recovery) {
	t.Helper()
	s := state{}
	l, rec, err := Open(dir, Options{}, s.apply)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return s, rec
}

func put(key, value string) Entry { return Entry{Kind: KindPut, Key: key, Value: []byte(value)} }
func evict(key string) Entry      { return Entry{Kind: KindEvict, Key: key} }

func mustAppend(t *testing.T, l *Log, es ...Entry) {
	t.Helper()
	if err := l.Append(context.Background(), es...); err != nil {
		t.Fatalf("Append(%d entries): %v", len(es), err)
	}
}

func sameEntries(a, b []Entry) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d entries, want %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].Key != b[i].Key || string(a[i].Value) != string(b[i].Value) {
			return fmt.Errorf("entry %d = %v %q %q, want %v %q %q", i, a[i].Kind, a[i].Key, a[i].Value, b[i].Kind, b[i].Key, b[i].Value)
		}
	}
	return nil
}
