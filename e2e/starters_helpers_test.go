package e2e

// Helpers of the Todo starter tests (starters_sqlite_test.go,
// starters_postgres_test.go). Those tests run the committed examples
// (examples/todo-sqlite, examples/todo-postgres) and a freshly generated
// project as real processes on free loopback ports, drive them over HTTP and
// through their scripts, and keep every process log and command output under
// .tmp/e2e/<test>-<ns>/ when they fail (meshtest.ArtifactDir).
//
// meshc and the example binaries are built once per test binary, on first
// use, so that tests of this package that need none of them do not pay for
// the builds; TestMain removes them. PostgreSQL comes from pgtest: DATABASE_URL
// as an admin URL, else a throwaway server; without either the PostgreSQL
// tests skip, unless MESH_REQUIRE_POSTGRES=1.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
	"meshgo.dev/mesh/meshtest/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	if err := errors.Join(removeExampleBuilds(), meshtest.RemoveBuiltBinaries()); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: remove built binaries: %v\n", err)
	}
	os.Exit(code)
}

// Bounds of the waits in the starter tests. They are upper limits: every wait
// polls and returns as soon as its condition holds.
const (
	starterStartupTimeout = 30 * time.Second
	starterCommandTimeout = 5 * time.Minute // stage-deploy compiles the starter
	starterRequestTimeout = 10 * time.Second
)

// starterRoot returns the repository root: the parent of this package.
func starterRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// starterMeshc returns meshc built from this repository.
func starterMeshc(t *testing.T) string {
	t.Helper()
	return meshtest.BuildBinary(t, "./cmd/meshc")
}

// exampleBuild is one example binary built by exampleBinary.
type exampleBuild struct {
	once sync.Once
	path string
	err  error
}

var (
	exampleBuilds   sync.Map // example name → *exampleBuild
	exampleBuildDir = sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "mesh-e2e-starters-") })
)

// exampleBinary returns the binary of examples/<name>, built once per test
// binary with go build. The examples are modules of their own, so they are
// built from their own directory.
func exampleBinary(t *testing.T, name string) string {
	t.Helper()
	v, _ := exampleBuilds.LoadOrStore(name, &exampleBuild{})
	b := v.(*exampleBuild)
	b.once.Do(func() {
		dir, err := exampleBuildDir()
		if err != nil {
			b.err = err
			return
		}
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, ".")
		cmd.Dir = filepath.Join(starterRoot(t), "examples", name)
		if output, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build in %s: %w\n%s", cmd.Dir, err, output)
			return
		}
		b.path = out
	})
	if b.err != nil {
		t.Fatalf("build example %s: %v", name, b.err)
	}
	return b.path
}

func removeExampleBuilds() error {
	dir, err := exampleBuildDir()
	if err != nil {
		return nil
	}
	return os.RemoveAll(dir)
}

// starterEnv is the environment every child process starts from: PATH and the
// locale, nothing else of the test's environment (in particular no
// DATABASE_URL and no MESH_* variable).
func starterEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"LANG", "LC_ALL", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// starterGoEnv is starterEnv plus what the go command needs to build from the
// test's module and build caches.
func starterGoEnv() []string {
	env := starterEnv()
	for _, k := range []string{"HOME", "GOPATH", "GOCACHE", "GOMODCACHE", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "GONOSUMDB", "GOPRIVATE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// startStarter starts a starter binary with env on a free port, waits until it
// logs that HTTP is starting, and returns the process and its base URL. The
// working directory is dir (the test's own when empty).
func startStarter(t *testing.T, name, binary, dir string, env ...string) (*meshtest.Process, string) {
	t.Helper()
	port := meshtest.FreePort(t)
	env = append(append(starterEnv(), env...), fmt.Sprintf("PORT=%d", port))
	p := meshtest.StartProcess(t, name, binary, env, dir)
	p.WaitLog(t, fmt.Sprintf("[todo-api] HTTP server starting on :%d", port), starterStartupTimeout)
	return p, fmt.Sprintf("http://127.0.0.1:%d", port)
}

// starterResponse is one HTTP exchange.
type starterResponse struct {
	status int
	body   string
	header http.Header
}

var starterHTTPClient = &http.Client{Timeout: starterRequestTimeout}

// starterCall sends one request and fails the test when no response comes back.
func starterCall(t *testing.T, method, target, body string) starterResponse {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := starterHTTPClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, target, err)
	}
	return starterResponse{status: resp.StatusCode, body: strings.TrimSpace(string(b)), header: resp.Header}
}

// starterExpect sends one request and requires its status and exact body.
func starterExpect(t *testing.T, method, target, body string, wantStatus int, wantBody string) starterResponse {
	t.Helper()
	got := starterCall(t, method, target, body)
	if got.status != wantStatus || got.body != wantBody {
		t.Fatalf("%s %s = %d %s\nwant %d %s", method, target, got.status, got.body, wantStatus, wantBody)
	}
	return got
}

// starterExpectStatus sends one request and requires its status; it returns
// the response for further checks.
func starterExpectStatus(t *testing.T, method, target, body string, wantStatus int) starterResponse {
	t.Helper()
	got := starterCall(t, method, target, body)
	if got.status != wantStatus {
		t.Fatalf("%s %s = %d %s, want status %d", method, target, got.status, got.body, wantStatus)
	}
	return got
}

// starterCmd runs a command with a deadline and returns its combined output and
// exit code. The command line (with env values redacted), the output and the
// exit code are written to <artifacts>/<label>.log.
func starterCmd(t *testing.T, label, dir string, env []string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), starterCommandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("%s: %s %s: %v\n%s", label, name, strings.Join(args, " "), err, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s: %s %s did not finish within %v\n%s", label, name, strings.Join(args, " "), starterCommandTimeout, out)
	}
	where := dir
	if where == "" {
		where = "."
	}
	record := fmt.Sprintf("$ (cd %s && %s %s)\nexit: %d\n%s", where, name, strings.Join(args, " "), code, out)
	if err := os.WriteFile(filepath.Join(meshtest.ArtifactDir(t), label+".log"), []byte(record), 0o644); err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

// starterMustCmd is starterCmd that requires exit code 0.
func starterMustCmd(t *testing.T, label, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, code := starterCmd(t, label, dir, env, name, args...)
	if code != 0 {
		t.Fatalf("%s: %s %s exited %d:\n%s", label, name, strings.Join(args, " "), code, out)
	}
	return out
}

// starterContains fails unless text contains every one of subs.
func starterContains(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Fatalf("%s does not contain %q:\n%s", what, s, text)
		}
	}
}

// starterAbsent fails if text contains any one of subs.
func starterAbsent(t *testing.T, what, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("%s contains %q, which must never appear there:\n%s", what, s, text)
		}
	}
}

// starterInOrder fails unless lines appear in text in the given order.
func starterInOrder(t *testing.T, what, text string, lines ...string) {
	t.Helper()
	rest := text
	for _, l := range lines {
		i := strings.Index(rest, l)
		if i < 0 {
			t.Fatalf("%s lacks %q (or has it out of order):\n%s", what, l, text)
		}
		rest = rest[i+len(l):]
	}
}

// starterDatabaseURL returns the URL of a fresh, empty database for t. When pgtest
// runs its own throwaway server (trust authentication), a random password is
// planted in the URL, so that the tests can prove it never leaks.
func starterDatabaseURL(t *testing.T) string {
	t.Helper()
	raw := pgtest.New(t)
	if os.Getenv(pgtest.EnvAdminURL) != "" {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, has := u.User.Password(); has {
		return raw
	}
	secret := make([]byte, 8)
	rand.Read(secret)
	u.User = url.UserPassword(u.User.Username(), "e2e-planted-"+hex.EncodeToString(secret))
	return u.String()
}

// starterSecrets returns the strings of a database URL that must never appear in
// a response, a log line or a script's output: the URL and its password.
func starterSecrets(t *testing.T, databaseURL string) []string {
	t.Helper()
	secrets := []string{databaseURL}
	u, err := url.Parse(databaseURL)
	if err != nil {
		t.Fatalf("parse database URL: %v", err)
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		secrets = append(secrets, pw)
	}
	return secrets
}
