//go:build unix

package recordlog

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
)

const (
	crashDirEnv = "RECORDLOG_CRASH_DIR"
	crashAtEnv  = "RECORDLOG_CRASH_AT"
)

// TestCompactKilledAtEveryStep runs a compaction in a child process that
// SIGKILLs itself just before the k-th file-system operation, for every k.
// The parent then opens what the dead process left: the state is the one
// before the compaction if the rename had not happened, the compacted one if
// it had, and the log recovers, appends and compacts cleanly.
func TestCompactKilledAtEveryStep(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		k, _ := strconv.Atoi(os.Getenv(crashAtEnv))
		crashChild(t, dir, k)
		return
	}
	if testing.Short() {
		t.Skip("starts one process per step")
	}
	src := t.TempDir()
	full := history(t, src)
	compacted := full.filter(liveEven)
	ops := compactOps(t, src)
	renameAt := -1
	for i, op := range ops {
		if len(op) > 6 && op[:6] == "rename" {
			renameAt = i
		}
	}
	if renameAt < 0 {
		t.Fatalf("no rename among %v", ops)
	}
	for k := 0; k <= len(ops); k++ {
		name := "completes"
		if k < len(ops) {
			name = ops[k]
		}
		t.Run(fmt.Sprintf("%02d-before-%s", k, name), func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			cmd := exec.Command(os.Args[0], "-test.run=^TestCompactKilledAtEveryStep$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashAtEnv+"="+strconv.Itoa(k))
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			killed := errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
			if k < len(ops) && !killed {
				t.Fatalf("child was not killed at step %d: %v\n%s", k, err, out)
			}
			if k == len(ops) && err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			want := full
			if k > renameAt {
				want = compacted
			}
			got, rec := replayState(t, dir)
			if !got.equal(want) {
				t.Fatalf("killed before %q (rename is step %d): %v, want %v", name, renameAt, got, want)
			}
			t.Logf("recovered %d entries from %d segments, removed %d leftover files", rec.Entries, rec.Segments, rec.RemovedFiles)
			l, _, _ := openLog(t, dir, Options{})
			mustAppend(t, l, put("k98", "after the crash"))
			l.Close()
			checkCompactsCleanly(t, dir, withKey(want, "k98", "after the crash"))
		})
	}
}

// crashChild opens dir and compacts it, killing the process just before the
// k-th file-system operation of the compaction.
func crashChild(t *testing.T, dir string, k int) {
	ffs := newFaultFS()
	l, _, _ := openLog(t, dir, Options{FS: ffs, SegmentSize: 300})
	n := 0
	ffs.setHook(func(op, _ string) error {
		if n == k {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		n++
		return nil
	})
	if _, err := l.Compact(liveEven); err != nil {
		t.Fatal(err)
	}
	ffs.setHook(nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}
