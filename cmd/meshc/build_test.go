package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/scaffold"
	"meshgo.dev/mesh/meshtest/pgtest"
)

// meshcBin is the meshc binary built once by TestMain for the tests that run
// it as a process.
var meshcBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meshc-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshcBin = filepath.Join(dir, "meshc")
	// Built from this package's directory, without -trimpath, so the binary
	// finds the runtime source the way an installed meshc does.
	if out, err := exec.Command("go", "build", "-o", meshcBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build meshc: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// cliResult is the outcome of one meshc process.
type cliResult struct {
	code           int
	stdout, stderr string
}

// runMeshc runs the built meshc in dir. The environment is the test's own
// minus the variables meshc reads (MESH_SOURCE_DIR, DATABASE_URL), plus env.
func runMeshc(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	return runProcess(t, dir, env, meshcBin, args...)
}

func runProcess(t *testing.T, dir string, env []string, bin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run %s %s: %v", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return res
}

func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		for _, k := range []string{sourceEnv, "DATABASE_URL", "MESH_"} {
			if strings.HasPrefix(kv, k) {
				return true
			}
		}
		return false
	})
}

// mustMeshc runs meshc and fails the test unless it exits 0.
func mustMeshc(t *testing.T, dir string, env []string, args ...string) cliResult {
	t.Helper()
	res := runMeshc(t, dir, env, args...)
	if res.code != 0 {
		t.Fatalf("meshc %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// newProject runs meshc init with args in a fresh directory and returns that
// directory; the project is <returned dir>/<name>.
func newProject(t *testing.T, name string, args ...string) string {
	t.Helper()
	parent := t.TempDir()
	mustMeshc(t, parent, nil, append(append([]string{"init"}, args...), name)...)
	return parent
}

func TestGeneratedProjectsBuildAndTest(t *testing.T) {
	tests := []struct {
		kind scaffold.Kind
		args []string
		// check runs the built binary.
		check func(t *testing.T, bin string)
	}{
		{scaffold.KindHello, nil, func(t *testing.T, bin string) {
			res := runProcess(t, t.TempDir(), nil, bin)
			if res.code != 0 || res.stdout != "Hello from Mesh!\n" {
				t.Errorf("hello binary: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
			}
		}},
		{scaffold.KindClustered, []string{"--clustered"}, func(t *testing.T, bin string) {
			res := runProcess(t, t.TempDir(), []string{"MESH_CLUSTER_PORT=abc"}, bin)
			want := "[clustered-app] runtime bootstrap failed reason=Invalid MESH_CLUSTER_PORT"
			if res.code != 1 || !strings.Contains(res.stderr, want) {
				t.Errorf("clustered binary with a bad port: exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, want)
			}
			checkStandaloneRunAndStop(t, bin)
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			name := "app-" + string(tt.kind)
			parent := newProject(t, name, tt.args...)
			res := mustMeshc(t, parent, nil, "build", name)
			if want := "Built " + filepath.Join(name, name) + "\n"; res.stdout != want {
				t.Errorf("meshc build stdout = %q, want %q", res.stdout, want)
			}
			bin := filepath.Join(parent, name, name)
			tt.check(t, bin)

			// From inside the project, with no argument.
			os.Remove(bin)
			res = mustMeshc(t, filepath.Join(parent, name), nil, "build")
			if want := "Built " + name + "\n"; res.stdout != want {
				t.Errorf("meshc build (no dir) stdout = %q, want %q", res.stdout, want)
			}
			if _, err := os.Stat(bin); err != nil {
				t.Errorf("binary missing after meshc build: %v", err)
			}

			res = mustMeshc(t, parent, nil, "test", name)
			if !strings.Contains(res.stdout, "ok  \t"+name) {
				t.Errorf("meshc test stdout lacks an ok line for %s:\n%s", name, res.stdout)
			}
		})
	}
}

// checkStandaloneRunAndStop starts the clustered binary without cluster
// environment, waits for its bootstrap line and stops it with SIGTERM.
func checkStandaloneRunAndStop(t *testing.T, bin string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin)
	cmd.Dir = t.TempDir()
	cmd.Env = cleanEnv()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	want := "[clustered-app] runtime bootstrap mode=standalone"
	deadline := time.After(15 * time.Second)
	var seen []string
wait:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("clustered binary exited before %q; output:\n%s", want, strings.Join(seen, "\n"))
			}
			seen = append(seen, line)
			if strings.Contains(line, want) {
				break wait
			}
		case <-deadline:
			cmd.Process.Kill()
			t.Fatalf("no %q within 15s; output:\n%s", want, strings.Join(seen, "\n"))
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range lines { // drain so the process never blocks on stderr
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("clustered binary after SIGTERM: %v (want exit 0)", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Errorf("clustered binary did not exit within 15s of SIGTERM")
	}
}

func TestBuildOutputElsewhereLeavesProjectUntouched(t *testing.T) {
	parent := newProject(t, "outapp")
	project := filepath.Join(parent, "outapp")
	before, err := scaffold.Manifest(project)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bin", "custom")
	res := mustMeshc(t, parent, nil, "build", "--output", out, "outapp")
	if res.stdout != "Built "+out+"\n" {
		t.Errorf("stdout = %q", res.stdout)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("binary not at --output: %v", err)
	}
	after, err := scaffold.Manifest(project)
	if err != nil {
		t.Fatal(err)
	}
	if d := scaffold.Compare(before, after); !d.Empty() {
		t.Errorf("meshc build --output changed the project: %s", d)
	}
}

func TestBuildErrors(t *testing.T) {
	parent := t.TempDir()
	if err := os.Mkdir(filepath.Join(parent, "nomod"), 0o755); err != nil {
		t.Fatal(err)
	}
	broken := newProject(t, "broken")
	if err := os.WriteFile(filepath.Join(broken, "broken", "main.go"), []byte("package main\n\nfunc main() { undefinedThing() }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		dir        string
		args       []string
		wantStderr string // prefix of stderr
		wantIn     string // also contained in stderr
	}{
		{"no go.mod", parent, []string{"build", "nomod"}, "error: no go.mod in nomod: expected a Go module such as one created by meshc init; pass the project's directory (the one holding go.mod)\n", ""},
		{"missing dir", parent, []string{"build", "absent"}, "error: project directory absent does not exist; pass the directory meshc init created, or run meshc init first\n", ""},
		{"two dirs", parent, []string{"build", "a", "b"}, "error: meshc build takes at most one project directory, got 2; run 'meshc build --help'\n", ""},
		{"unknown flag", parent, []string{"build", "--nope"}, "error: flag provided but not defined: -nope; run 'meshc build --help'\n", ""},
		{"compile error", broken, []string{"build", "broken"}, "", "error: go build in broken failed: exit status 1"},
		{"test without go.mod", parent, []string{"test", "nomod"}, "error: no go.mod in nomod: expected a Go module such as one created by meshc init; pass the project's directory (the one holding go.mod)\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := runMeshc(t, tt.dir, nil, tt.args...)
			if res.code != 1 {
				t.Errorf("exit %d, want 1", res.code)
			}
			if tt.wantStderr != "" && res.stderr != tt.wantStderr {
				t.Errorf("stderr = %q, want %q", res.stderr, tt.wantStderr)
			}
			if !strings.Contains(res.stderr, tt.wantIn) {
				t.Errorf("stderr = %q, want it to contain %q", res.stderr, tt.wantIn)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(broken, "broken", "broken")); err == nil {
		t.Errorf("a failed build left a binary")
	}
}

func TestHelpExitsZero(t *testing.T) {
	for _, cmd := range []string{"init", "build", "test", "migrate", "version"} {
		t.Run(cmd, func(t *testing.T) {
			res := runMeshc(t, t.TempDir(), nil, cmd, "--help")
			if res.code != 0 || !strings.HasPrefix(res.stdout, "Usage: meshc "+cmd) && !strings.HasPrefix(res.stdout, "Usage:\n  meshc "+cmd) {
				t.Errorf("meshc %s --help: exit %d, stdout %q", cmd, res.code, res.stdout)
			}
			if res.stderr != "" {
				t.Errorf("meshc %s --help wrote to stderr: %q", cmd, res.stderr)
			}
		})
	}
}
