//go:build unix

package meshtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fakeTB records failures and cleanups instead of acting on them, so the
// failure paths of the helpers can be tested. Fatalf ends the calling
// goroutine, as testing.T's FailNow does; run code that may call it through
// fakeTB.run.
type fakeTB struct {
	testing.TB // the real test, for methods not overridden here

	name     string
	mu       sync.Mutex
	failed   bool
	msgs     []string
	cleanups []func()
}

func newFake(t *testing.T, name string) *fakeTB { return &fakeTB{TB: t, name: name} }

func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Helper()      {}
func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}
func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.Logf(format, args...)
	f.mu.Lock()
	f.failed = true
	f.mu.Unlock()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	runtime.Goexit()
}

// run calls body on its own goroutine, so that Fatalf can end it.
func (f *fakeTB) run(body func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		body()
	}()
	<-done
}

// finish runs the recorded cleanups, last first.
func (f *fakeTB) finish() {
	f.mu.Lock()
	cleanups := f.cleanups
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
}

func (f *fakeTB) messages() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if err := RemoveBuiltBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// shEnv is a minimal environment for /bin/sh scripts.
func shEnv(extra ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, extra...)
}

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func TestStartProcessEnvDirAndLog(t *testing.T) {
	t.Setenv("MESH_LEAK_CHECK", "inherited")
	dir := t.TempDir()
	p := StartProcess(t, "sh", "/bin/sh", shEnv("MESH_GREETING=hi"), dir, "-c",
		`echo "greeting=$MESH_GREETING leak=[$MESH_LEAK_CHECK] pwd=$(pwd)"; echo to-stderr >&2; exec sleep 30`)
	p.WaitLog(t, "to-stderr", 5*time.Second)
	log := p.Log()
	if want := "greeting=hi leak=[] pwd=" + dir; !strings.Contains(log, want) {
		t.Errorf("log %q does not contain %q", log, want)
	}
	if got, want := p.LogPath(), filepath.Join(ArtifactDir(t), "sh-1.log"); got != want {
		t.Errorf("LogPath = %q, want %q", got, want)
	}
	if !p.Running() {
		t.Fatal("process exited early")
	}
	pid := p.Pid()
	p.Kill()
	if p.Running() || !gone(pid) {
		t.Fatal("process survived Kill")
	}
	if code, err := p.Wait(time.Second); err != nil || code != -1 {
		t.Errorf("Wait after Kill = %d, %v; want -1 (signal)", code, err)
	}
	p.Kill() // a second Kill is harmless
}

func TestStartProcessNilEnvIsEmpty(t *testing.T) {
	t.Setenv("MESH_LEAK_CHECK", "inherited")
	p := StartProcess(t, "env", "/bin/sh", nil, "", "-c", `echo "vars=[$(export -p | grep -c MESH_LEAK_CHECK)]"`)
	if code, err := p.Wait(5 * time.Second); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}
	if log := p.Log(); !strings.Contains(log, "vars=[0]") {
		t.Errorf("nil env inherited the test's environment: %q", log)
	}
}

var tickRE = regexp.MustCompile(`tick (\d+)\n`)

func lastTick(t *testing.T, log string) int {
	t.Helper()
	m := tickRE.FindAllStringSubmatch(log, -1)
	if len(m) == 0 {
		t.Fatalf("no tick in log %q", log)
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

func TestProcessStopCont(t *testing.T) {
	p := StartProcess(t, "ticker", "/bin/sh", shEnv(), "", "-c",
		`i=0; while :; do i=$((i+1)); echo "tick $i"; sleep 0.02; done`)
	p.WaitLog(t, "tick 3\n", 5*time.Second)

	p.Stop()
	time.Sleep(50 * time.Millisecond) // let an in-flight tick land
	frozen := p.Log()
	time.Sleep(200 * time.Millisecond)
	if after := p.Log(); after != frozen {
		t.Fatalf("stopped process kept logging: %d → %d bytes", len(frozen), len(after))
	}

	p.Cont()
	p.WaitLog(t, fmt.Sprintf("tick %d\n", lastTick(t, frozen)+3), 5*time.Second)
}

func TestProcessTerminate(t *testing.T) {
	bin := BuildBinary(t, "./meshtest/testdata/hello")
	p := StartProcess(t, "hello", bin, []string{"MESH_GREETING=hey"}, "", "wait")
	p.WaitLog(t, `hello args=wait greeting="hey"`, 10*time.Second)
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Log(), "terminated") {
		t.Errorf("process did not handle SIGTERM: %q", p.Log())
	}
	if code, err := p.Wait(time.Second); err != nil || code != 0 {
		t.Errorf("exit = %d, %v; want 0", code, err)
	}
	if err := p.Terminate(); err != nil {
		t.Errorf("Terminate of an exited process = %v", err)
	}

	// A stopped process still gets to handle SIGTERM.
	p.Restart()
	p.WaitLog(t, "hello args=wait", 10*time.Second)
	p.Stop()
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Log(), "terminated") {
		t.Errorf("stopped process did not handle SIGTERM: %q", p.Log())
	}
}

// TestHelloHandlesSIGTERMSentAtReadyLine sends SIGTERM to the hello helper
// the instant its ready line arrives, a thousand times in a row: a program
// that announces readiness before installing its handler is killed by the
// default action in a large share of these runs.
func TestHelloHandlesSIGTERMSentAtReadyLine(t *testing.T) {
	bin := BuildBinary(t, "./meshtest/testdata/hello")
	const runs = 1000
	for i := range runs {
		cmd := exec.Command(bin, "wait")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stdout)
		ready, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(ready, "hello args=wait") {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("run %d: ready line %q, %v", i, ready, err)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatalf("run %d: SIGTERM: %v", i, err)
		}
		rest, _ := io.ReadAll(r)
		err = cmd.Wait()
		if err != nil || string(rest) != "terminated\n" {
			t.Fatalf("run %d of %d: after SIGTERM at the ready line: exit %v, output %q; want exit 0 and \"terminated\"", i+1, runs, err, rest)
		}
	}
}

func TestProcessTerminateFallsBackToKill(t *testing.T) {
	p := StartProcess(t, "stubborn", "/bin/sh", shEnv(), "", "-c",
		`trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	p.WaitLog(t, "ready", 5*time.Second)
	p.TerminateGrace = 200 * time.Millisecond
	start := time.Now()
	err := p.Terminate()
	if err == nil || !strings.Contains(err.Error(), "did not exit within 200ms") {
		t.Fatalf("Terminate = %v; want a did-not-exit error", err)
	}
	if time.Since(start) < 200*time.Millisecond || p.Running() {
		t.Errorf("Terminate returned after %v, running=%v", time.Since(start), p.Running())
	}
}

func TestProcessRestart(t *testing.T) {
	p := StartProcess(t, "node", "/bin/sh", shEnv(), "", "-c", `echo "pid $$"; exec sleep 30`)
	p.WaitLog(t, "pid ", 5*time.Second)
	firstLog, firstPid := p.LogPath(), p.Pid()

	p.Restart()
	p.WaitLog(t, fmt.Sprintf("pid %d", p.Pid()), 5*time.Second)
	if !gone(firstPid) {
		t.Error("Restart left the first run running")
	}
	if p.Pid() == firstPid || p.LogPath() == firstLog || !strings.HasSuffix(p.LogPath(), "node-2.log") {
		t.Errorf("restart reused pid %d or log %s", p.Pid(), p.LogPath())
	}
	if strings.Contains(p.Log(), fmt.Sprintf("pid %d", firstPid)) {
		t.Error("second run's log holds the first run's output")
	}
	if data, err := os.ReadFile(firstLog); err != nil || !strings.Contains(string(data), fmt.Sprintf("pid %d", firstPid)) {
		t.Errorf("first run's log lost: %q, %v", data, err)
	}
}

// deadOrZombie reports whether pid no longer runs: it is gone, or a zombie
// waiting for a parent (possibly a container init) to reap it.
func deadOrZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return gone(pid)
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestProcessCleanupKillsAndRemovesArtifacts(t *testing.T) {
	f := newFake(t, "TestFake/cleanup")
	var p *Process
	f.run(func() {
		p = StartProcess(f, "sleeper", "/bin/sh", shEnv(), "", "-c", `sleep 30 & echo "child $!"; exec sleep 30`)
	})
	if p == nil {
		t.Fatalf("StartProcess failed: %s", f.messages())
	}
	p.WaitLog(t, "child ", 5*time.Second)
	m := regexp.MustCompile(`child (\d+)`).FindStringSubmatch(p.Log())
	child, _ := strconv.Atoi(m[1])
	pid, dir := p.Pid(), filepath.Dir(p.LogPath())

	f.finish()
	if !gone(pid) {
		t.Error("cleanup left the process running")
	}
	Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if !deadOrZombie(child) {
			return fmt.Errorf("child %d of the process group still runs", child)
		}
		return nil
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("artifacts of a passing test not removed: %v", err)
	}
}

func TestArtifactDirKeptOnFailureOrRequest(t *testing.T) {
	failing := newFake(t, "TestFake/failing")
	dir := ArtifactDir(failing)
	if again := ArtifactDir(failing); again != dir {
		t.Errorf("second call returned %q, first %q", again, dir)
	}
	wantParent := filepath.Join(moduleRoot(), ".tmp", "e2e")
	if filepath.Dir(dir) != wantParent || !strings.HasPrefix(filepath.Base(dir), "TestFake_failing-") {
		t.Errorf("ArtifactDir = %q, want %s/TestFake_failing-<unixnano>", dir, wantParent)
	}
	if _, err := os.Stat(filepath.Join(moduleRoot(), "go.mod")); err != nil {
		t.Errorf("module root %q has no go.mod", moduleRoot())
	}
	failing.Errorf("pretend failure")
	failing.finish()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("artifacts of a failing test removed: %v", err)
	}
	if !strings.Contains(failing.messages(), "artifacts kept in "+dir) {
		t.Errorf("kept directory not logged: %s", failing.messages())
	}
	os.RemoveAll(dir)

	t.Setenv("MESH_KEEP_ARTIFACTS", "1")
	kept := newFake(t, "TestFake/kept")
	dir = ArtifactDir(kept)
	kept.finish()
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("MESH_KEEP_ARTIFACTS=1 did not keep %s: %v", dir, err)
	}
	os.RemoveAll(dir)
}

func TestWaitLogFailures(t *testing.T) {
	t.Run("process exits", func(t *testing.T) {
		p := StartProcess(t, "quick", "/bin/sh", shEnv(), "", "-c", "echo bye")
		f := newFake(t, "TestFake/exit")
		start := time.Now()
		f.run(func() { p.WaitLog(f, "never printed", 10*time.Second) })
		if !f.Failed() || !strings.Contains(f.messages(), "exited without logging") ||
			!strings.Contains(f.messages(), "bye") {
			t.Errorf("WaitLog on an exited process: %s", f.messages())
		}
		if time.Since(start) > 5*time.Second {
			t.Error("WaitLog waited for the timeout although the process had exited")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		p := StartProcess(t, "slow", "/bin/sh", shEnv(), "", "-c", "echo waiting; exec sleep 30")
		f := newFake(t, "TestFake/timeout")
		f.run(func() { p.WaitLog(f, "never printed", 100*time.Millisecond) })
		if !f.Failed() || !strings.Contains(f.messages(), "did not log") {
			t.Errorf("WaitLog timeout: %s", f.messages())
		}
	})
}

func TestFreePort(t *testing.T) {
	a, b := FreePort(t), FreePort(t)
	if a == b {
		t.Fatalf("FreePort returned %d twice", a)
	}
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", a), fmt.Sprintf("[::1]:%d", a)} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("port %d not free on %s: %v", a, addr, err)
		}
		defer l.Close()
	}
	// The port lies below the kernel's ephemeral range, so no outgoing
	// connection can be given it, and it stays reserved against other test
	// binaries (a second lock on it fails while this binary runs).
	if lo, hi := portRange(); a < lo || a >= hi {
		t.Errorf("port %d outside [%d, %d)", a, lo, hi)
	}
	if f, err := reservePort(a); err == nil {
		f.Close()
		t.Errorf("port %d could be reserved a second time", a)
	}
}

func TestEventually(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, time.Millisecond, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("condition called %d times, want 3", calls)
	}

	f := newFake(t, "TestFake/eventually")
	calls = 0
	start := time.Now()
	f.run(func() {
		Eventually(f, 100*time.Millisecond, 30*time.Millisecond, func() error {
			calls++
			return fmt.Errorf("attempt %d failed", calls)
		})
	})
	msg := f.messages()
	if !f.Failed() || !strings.Contains(msg, "within 100ms") || !strings.Contains(msg, fmt.Sprintf("attempt %d failed", calls)) {
		t.Errorf("failure message %q should quote the last error (attempt %d)", msg, calls)
	}
	if elapsed := time.Since(start); elapsed < 100*time.Millisecond || elapsed > 2*time.Second {
		t.Errorf("Eventually gave up after %v", elapsed)
	}
}

func TestBuildBinary(t *testing.T) {
	first := BuildBinary(t, "./meshtest/testdata/hello")
	if second := BuildBinary(t, "./meshtest/testdata/hello"); second != first {
		t.Errorf("second build returned %q, first %q", second, first)
	}
	if fi, err := os.Stat(first); err != nil || fi.Mode()&0o111 == 0 || filepath.Base(first) != "hello" {
		t.Errorf("built binary %q: %v, %v", first, fi, err)
	}
	f := newFake(t, "TestFake/build")
	f.run(func() { BuildBinary(f, "./meshtest/testdata/does-not-exist") })
	if !f.Failed() || !strings.Contains(f.messages(), "go build") {
		t.Errorf("failed build: %s", f.messages())
	}
}
