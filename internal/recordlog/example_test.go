package recordlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"meshgo.dev/mesh/internal/recordlog"
)

func Example() {
	stateDir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(stateDir)
	dir := filepath.Join(stateDir, recordlog.DirName)

	// The caller folds the entries into its own state.
	records := map[string]string{}
	fold := func(e recordlog.Entry) error {
		if e.Kind == recordlog.KindEvict {
			delete(records, e.Key)
		} else {
			records[e.Key] = string(e.Value)
		}
		return nil
	}

	l, _, err := recordlog.Open(dir, recordlog.Options{}, fold)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	// Each Append returns once its entries are fsynced.
	l.Append(ctx, recordlog.Entry{Kind: recordlog.KindPut, Key: "req-1", Value: []byte("pending")})
	l.Append(ctx, recordlog.Entry{Kind: recordlog.KindPut, Key: "req-1", Value: []byte("completed")},
		recordlog.Entry{Kind: recordlog.KindPut, Key: "req-2", Value: []byte("pending")})
	l.Append(ctx, recordlog.Entry{Kind: recordlog.KindEvict, Key: "req-2"})
	st, _ := l.Compact(func(key string) bool { return true })
	fmt.Printf("compacted %d entries into %d\n", st.EntriesRead, st.EntriesKept)
	l.Close()

	records = map[string]string{}
	l, rec, err := recordlog.Open(dir, recordlog.Options{}, fold)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	fmt.Printf("recovered %d entries from %d segments, %d bytes cut\n", rec.Entries, rec.Segments, rec.TruncatedBytes)
	fmt.Println(records)
	// Output:
	// compacted 4 entries into 1
	// recovered 1 entries from 2 segments, 0 bytes cut
	// map[req-1:completed]
}
