//go:build unix

package recordlog

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenLocksTheDirectory: a second Open of a directory in use fails with
// ErrLocked naming the lock file, and succeeds once the first log is closed.
func TestOpenLocksTheDirectory(t *testing.T) {
	dir := t.TempDir()
	l, _, _ := openLog(t, dir, Options{})
	_, _, err := Open(dir, Options{}, state{}.apply)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, LockName)) {
		t.Fatalf("second Open = %v; want ErrLocked naming the lock file", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, _, _ = openLog(t, dir, Options{})
	l.Close()
}
