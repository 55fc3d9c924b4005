//go:build unix

package meshtest

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultTerminateGrace is how long Terminate waits after SIGTERM before it
// falls back to SIGKILL.
const DefaultTerminateGrace = 10 * time.Second

// killWait bounds the wait for a SIGKILLed process to be reaped.
const killWait = 10 * time.Second

// Process is a real OS process run by a test, typically a Mesh node. Its
// stdout and stderr go to <ArtifactDir>/<name>-<run>.log, where run counts
// starts and restarts from 1. The process leads its own process group, and
// every signal goes to the whole group, so helper children stop and die with
// it. The test's cleanup kills whatever is still running.
//
// Methods are safe for concurrent use; Restart must not race with itself.
type Process struct {
	// TerminateGrace is how long Terminate waits for exit after SIGTERM;
	// zero means DefaultTerminateGrace. Set it before calling Terminate.
	TerminateGrace time.Duration

	t         testing.TB
	name      string
	binary    string
	args      []string
	env       []string
	dir       string
	artifacts string

	mu      sync.Mutex    // guards the fields below
	run     int           // number of starts so far
	cmd     *exec.Cmd     // current run
	logPath string        // current run's log
	done    chan struct{} // closed when the current run has been reaped
}

// StartProcess starts binary with args in dir (empty: the test's working
// directory). env is the complete environment of the process, passed as is:
// nothing is inherited from the test, and nil means an empty environment.
// The test fails at once if the process cannot be started.
func StartProcess(t testing.TB, name, binary string, env []string, dir string, args ...string) *Process {
	t.Helper()
	p := &Process{
		t:         t,
		name:      name,
		binary:    binary,
		args:      append([]string(nil), args...),
		env:       append([]string{}, env...),
		dir:       dir,
		artifacts: ArtifactDir(t),
	}
	if err := p.start(); err != nil {
		t.Fatalf("start process %s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("process %s: %d run(s), last log %s", p.name, p.run, p.logPath)
			p.mu.Unlock()
		}
	})
	return p
}

// start launches a new run; the previous one must have exited.
func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.run++
	logPath := filepath.Join(p.artifacts, fmt.Sprintf("%s-%d.log", p.name, p.run))
	logFile, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(p.binary, p.args...)
	cmd.Env = p.env
	cmd.Dir = p.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.logPath, p.done = cmd, logPath, done
	go func() {
		// The exit status is read from cmd.ProcessState by Wait.
		_ = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	return nil
}

// current returns the running command and its done channel.
func (p *Process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// signal sends sig to the current run's process group unless it has exited.
func (p *Process) signal(sig syscall.Signal) {
	cmd, done := p.current()
	select {
	case <-done:
		return
	default:
	}
	// The group id is the leader's pid (Setpgid). The group may already be
	// gone if the process is exiting; that is fine.
	_ = syscall.Kill(-cmd.Process.Pid, sig)
}

// Pid returns the process id of the current run.
func (p *Process) Pid() int {
	cmd, _ := p.current()
	return cmd.Process.Pid
}

// Running reports whether the current run has not exited yet.
func (p *Process) Running() bool {
	_, done := p.current()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Kill sends SIGKILL to the process group and waits until the process is
// reaped. It does nothing if the process has already exited.
func (p *Process) Kill() {
	p.signal(syscall.SIGKILL)
	_, done := p.current()
	select {
	case <-done:
	case <-time.After(killWait):
		p.t.Errorf("process %s (pid %d) not reaped %v after SIGKILL", p.name, p.Pid(), killWait)
	}
}

// Stop freezes the process group with SIGSTOP, as a hung node would be.
func (p *Process) Stop() { p.signal(syscall.SIGSTOP) }

// Cont resumes a stopped process group with SIGCONT.
func (p *Process) Cont() { p.signal(syscall.SIGCONT) }

// Terminate asks the process group to exit with SIGTERM (followed by SIGCONT,
// so a stopped process handles it) and waits up to TerminateGrace. If the
// process is still running then, it is killed and Terminate returns an
// error. It returns nil if the process had already exited.
func (p *Process) Terminate() error {
	grace := p.TerminateGrace
	if grace <= 0 {
		grace = DefaultTerminateGrace
	}
	p.signal(syscall.SIGTERM)
	p.signal(syscall.SIGCONT)
	_, done := p.current()
	select {
	case <-done:
		return nil
	case <-time.After(grace):
	}
	p.Kill()
	return fmt.Errorf("process %s did not exit within %v of SIGTERM; killed", p.name, grace)
}

// Wait waits up to timeout for the current run to exit on its own and
// returns its exit code (-1 if a signal ended it). It returns an error if the
// process is still running at the deadline.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	cmd, done := p.current()
	select {
	case <-done:
	case <-time.After(timeout):
		return 0, fmt.Errorf("process %s still running after %v", p.name, timeout)
	}
	return cmd.ProcessState.ExitCode(), nil
}

// Restart kills the current run if it is still running and starts the same
// binary again with the same arguments, environment and directory. The new
// run logs to a new file with the next run number. The test fails at once if
// the process cannot be started.
func (p *Process) Restart() {
	p.t.Helper()
	p.Kill()
	if err := p.start(); err != nil {
		p.t.Fatalf("restart process %s: %v", p.name, err)
	}
}

// LogPath returns the log file of the current run.
func (p *Process) LogPath() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logPath
}

// Log returns everything the current run has written so far.
func (p *Process) Log() string {
	data, err := os.ReadFile(p.LogPath())
	if err != nil {
		return fmt.Sprintf("<reading %s: %v>", p.LogPath(), err)
	}
	return string(data)
}

// WaitLog waits until the current run's log contains substring. It fails t
// at the timeout, or as soon as the process exits without having logged it,
// quoting the end of the log.
func (p *Process) WaitLog(t testing.TB, substring string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		exited := !p.Running()
		log := p.Log()
		switch {
		case strings.Contains(log, substring):
			return
		case exited:
			t.Fatalf("process %s exited without logging %q; log %s ends with:\n%s", p.name, substring, p.LogPath(), tail(log))
			return
		case time.Now().After(deadline):
			t.Fatalf("process %s did not log %q within %v; log %s ends with:\n%s", p.name, substring, timeout, p.LogPath(), tail(log))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tail returns the last lines of a log, for failure messages.
func tail(log string) string {
	const max = 4096
	if len(log) > max {
		log = "..." + log[len(log)-max:]
	}
	return log
}

var artifactDirs sync.Map // testing.TB → string

// ArtifactDir returns the directory where the current test keeps process
// logs and other evidence: <module root>/.tmp/e2e/<TestName>-<unixnano>/,
// created on first use and the same for every later call in the test. The
// directory is removed when the test passes, unless MESH_KEEP_ARTIFACTS=1;
// it is kept, and its path logged, when the test fails.
func ArtifactDir(t testing.TB) string {
	t.Helper()
	if dir, ok := artifactDirs.Load(t); ok {
		return dir.(string)
	}
	dir := filepath.Join(moduleRoot(), ".tmp", "e2e", fmt.Sprintf("%s-%d", safeName(t.Name()), time.Now().UnixNano()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifact dir: %v", err)
	}
	if actual, loaded := artifactDirs.LoadOrStore(t, dir); loaded {
		os.Remove(dir)
		return actual.(string)
	}
	t.Cleanup(func() {
		artifactDirs.Delete(t)
		if t.Failed() || os.Getenv("MESH_KEEP_ARTIFACTS") == "1" {
			t.Logf("artifacts kept in %s", dir)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove artifacts: %v", err)
		}
	})
	return dir
}

// safeName maps a test name to one path element.
func safeName(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, name)
}

var moduleRoot = sync.OnceValue(findModuleRoot)

// findModuleRoot walks up from the working directory to the go.mod of
// meshgo.dev/mesh, falling back to the nearest go.mod, then to the working
// directory itself.
func findModuleRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return os.TempDir()
	}
	nearest := ""
	for dir := wd; ; dir = filepath.Dir(dir) {
		if f, err := os.Open(filepath.Join(dir, "go.mod")); err == nil {
			line, _ := bufio.NewReader(f).ReadString('\n')
			f.Close()
			if strings.TrimSpace(line) == "module meshgo.dev/mesh" {
				return dir
			}
			if nearest == "" {
				nearest = dir
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	if nearest != "" {
		return nearest
	}
	return wd
}

var (
	portsMu    sync.Mutex
	portsGiven = make(map[int]bool) // ports FreePort returned, never handed out twice
	portsHeld  []*os.File           // reservation locks, held until the process exits
	portsRand  = rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
)

// FreePort returns a TCP port that is free on both 127.0.0.1 and [::1] right
// now, so a primary@127.0.0.1:P and standby@[::1]:P pair can share it.
//
// Two races are closed that a port from the kernel's ephemeral range leaves
// open: the port is drawn from below that range, so no outgoing connection
// (a node dialing its peer, meshc, an HTTP client) can be given it as its
// local port before the test binds it; and it is reserved with a lock file
// under the temporary directory, held until the test binary exits, so test
// binaries running in parallel never pick the same port. It never returns
// the same port twice in one test binary.
func FreePort(t testing.TB) int {
	t.Helper()
	lo, hi := portRange()
	var lastErr error
	for range 200 {
		port := lo + portsRand.IntN(hi-lo)
		portsMu.Lock()
		given := portsGiven[port]
		portsMu.Unlock()
		if given {
			continue
		}
		lock, err := reservePort(port)
		if err != nil {
			lastErr = err
			continue
		}
		if err := bindableTwice(port); err != nil {
			lock.Close()
			lastErr = err
			continue
		}
		portsMu.Lock()
		portsGiven[port] = true
		portsHeld = append(portsHeld, lock)
		portsMu.Unlock()
		return port
	}
	t.Fatalf("free port: no port in [%d, %d) free on both 127.0.0.1 and [::1] after 200 tries (last error: %v)", lo, hi, lastErr)
	return 0
}

// portRange returns the range FreePort draws from: 10000 to 24000, below the
// kernel's ephemeral range (ip_local_port_range, 32768 and up by default).
// The shell rails draw from 24000 to 32000 (rail_free_port in
// scripts/lib/rail.sh), so a rail started by a test never meets a port of a
// test binary. On a machine whose ephemeral range starts below 24000, the
// 2000 ports just below that range are used instead.
func portRange() (lo, hi int) {
	lo, hi = 10000, 24000
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return lo, hi
	}
	fields := strings.Fields(string(data))
	if len(fields) != 2 {
		return lo, hi
	}
	ephemeralLo, err := strconv.Atoi(fields[0])
	if err != nil || ephemeralLo >= hi || ephemeralLo < 3024 {
		return lo, hi
	}
	return ephemeralLo - 2000, ephemeralLo
}

// reservePort takes an exclusive, non-blocking lock on the port's lock file,
// shared by every test binary on the machine. The lock lasts while the
// returned file is open; the kernel drops it when the process exits, however
// it exits.
func reservePort(port int) (*os.File, error) {
	dir := filepath.Join(os.TempDir(), "meshtest-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(port)+".lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("port %d reserved by another test binary: %w", port, err)
	}
	return f, nil
}

// bindableTwice reports whether port can be bound on 127.0.0.1 and [::1]
// right now.
func bindableTwice(port int) error {
	l4, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return err
	}
	defer l4.Close()
	l6, err := net.Listen("tcp6", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		return err
	}
	return l6.Close()
}

// Eventually calls condition every interval until it returns nil, and fails
// t if it still returns an error after timeout, quoting the last error. The
// condition is always called at least once, and once more at the deadline.
func Eventually(t testing.TB, timeout, interval time.Duration, condition func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := condition()
		if err == nil {
			return
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			t.Fatalf("condition not met within %v: %v", timeout, err)
			return
		}
		time.Sleep(min(interval, remaining))
	}
}

// builtBinary is one package built by BuildBinary.
type builtBinary struct {
	once sync.Once
	path string
	err  error
}

var (
	builds    sync.Map // package → *builtBinary
	buildDirs sync.Map // temporary directories holding built binaries
)

// BuildBinary builds the main package pkg with go build and returns the path
// of the executable. pkg is an import path or a directory relative to the
// module root (./cmd/meshc). Each package is built once per test binary, and
// every caller gets the same path; a failed build fails every caller with the
// compiler output. Binaries live in temporary directories that
// RemoveBuiltBinaries deletes.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatalf("build %s: %v", pkg, b.err)
	}
	return b.path
}

// goBuild compiles pkg into a fresh temporary directory.
func goBuild(pkg string) (string, error) {
	dir, err := os.MkdirTemp("", "meshtest-bin-")
	if err != nil {
		return "", err
	}
	buildDirs.Store(dir, true)
	name := path.Base(strings.TrimSuffix(pkg, "/"))
	if name == "." || name == "/" || name == "" {
		name = "main"
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = moduleRoot()
	if output, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %w\n%s", err, output)
	}
	return out, nil
}

// RemoveBuiltBinaries deletes every binary BuildBinary has built; call it
// from TestMain after m.Run. Later BuildBinary calls for the same packages
// would return deleted paths, so call it only at the very end.
func RemoveBuiltBinaries() error {
	var errs []error
	buildDirs.Range(func(dir, _ any) bool {
		if err := os.RemoveAll(dir.(string)); err != nil {
			errs = append(errs, err)
		}
		buildDirs.Delete(dir)
		return true
	})
	return errors.Join(errs...)
}
