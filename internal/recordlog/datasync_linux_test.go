package recordlog

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSyncedAt: both ways of writing a batch into preallocated space
// (one pwritev2 with RWF_DSYNC, and the write then fdatasync a kernel
// without it gets) leave the bytes at their offset and the rest of the file
// as it was.
func TestWriteSyncedAt(t *testing.T) {
	for _, twoCalls := range []bool{false, true} {
		name := "pwritev2"
		if twoCalls {
			name = "write-then-fdatasync"
		}
		t.Run(name, func(t *testing.T) {
			if twoCalls {
				was := noDsyncWrites.Load()
				noDsyncWrites.Store(true)
				t.Cleanup(func() { noDsyncWrites.Store(was) })
			}
			f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			filler := bytes.Repeat([]byte{fillerByte}, 4096)
			if _, err := f.Write(filler); err != nil {
				t.Fatal(err)
			}
			data := []byte("a batch of frames")
			n, synced, err := writeSyncedAt(f, data, 100)
			if err != nil || !synced || n != len(data) {
				t.Fatalf("writeSyncedAt = %d, %v, %v; want %d, true, nil", n, synced, err, len(data))
			}
			got, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			want := append(append(append([]byte(nil), filler[:100]...), data...), filler[100+len(data):]...)
			if !bytes.Equal(got, want) {
				t.Fatalf("file after writeSyncedAt differs from the filler with the batch at offset 100")
			}
		})
	}
}
