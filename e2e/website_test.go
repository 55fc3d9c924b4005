package e2e

// Tests of the documentation site under website/:
//
//	go test ./e2e -run Website -v
//
//   - TestWebsiteSnippets: the Go programs the Distributed Primitives page
//     includes compile and vet, and every region a page includes exists;
//     TestWebsiteSnippetsRun runs some of them standalone and checks what the
//     page says they do.
//   - TestWebsiteToolingMatchesCLI: the Tooling reference is what meshc's
//     help prints now (website/scripts/gen-tooling.sh --check).
//   - TestWebsiteRailsMatchScripts and TestWebsiteFailureMapCoversEveryPhase:
//     the Distributed Proof page shows each rail's own --help and phases
//     (website/scripts/gen-rails.sh --check), and its failure map has a row
//     for every phase.
//   - TestWebsiteCapturedOutputMatchesProduct: the CLI output on the pages is
//     what a real local primary/standby pair prints now
//     (website/scripts/capture-cli-output.sh --check).
//   - TestWebsiteEnvTableMatchesRuntime, TestWebsiteTransitionTableMatchesRuntime,
//     TestWebsiteReasonTableMatchesRuntime and TestWebsiteClusteredFilesDocumented:
//     the hand-written tables name exactly what the code has.
//   - TestWebsiteBuildAndBrowser: `npm --prefix website run build`, then
//     headless Chromium through every built page (website/scripts/browser-check.mjs):
//     no console errors, no broken internal links or anchors, local search
//     answers, and a screenshot of the Clustered Example page in
//     .tmp/website/clustered-example.png.
//
// The browser test needs Node.js with npm and Debian's Chromium
// (apt-get update && apt-get install -y chromium; MESH_CHROMIUM names another
// binary). Without them it skips, saying why; with MESH_REQUIRE_BROWSER=1 it
// fails instead.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// websiteRoot is the repository root, found from this package's directory.
func websiteRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(wd)
	if _, err := os.Stat(filepath.Join(root, "website", "package.json")); err != nil {
		t.Fatalf("website/package.json not found from %s: %v", wd, err)
	}
	return root
}

// websiteCommand runs name args... in dir with a deadline and returns its
// combined output.
func websiteCommand(t *testing.T, dir string, deadline time.Duration, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), ctx.Err()
	}
	return string(out), err
}

func websitePages(t *testing.T, root string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(root, "website", "docs", "*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pages under website/docs: %v", err)
	}
	pages := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pages[filepath.Base(f)] = string(b)
	}
	return pages
}

var snippetImport = regexp.MustCompile(`(?m)^<<<\s+(\S+?)(?:#([\w-]+))?(?:\{[^}]*\})?\s*$`)

func TestWebsiteSnippets(t *testing.T) {
	root := websiteRoot(t)
	for _, args := range [][]string{{"vet", "./website/..."}, {"build", "-o", os.DevNull, "./website/snippets/..."}} {
		if out, err := websiteCommand(t, root, 5*time.Minute, nil, "go", args...); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	imported := 0
	for name, src := range websitePages(t, root) {
		for _, m := range snippetImport.FindAllStringSubmatch(src, -1) {
			imported++
			path := filepath.Join(root, "website", "docs", filepath.FromSlash(m[1]))
			b, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s includes %s: %v", name, m[1], err)
				continue
			}
			if !strings.HasPrefix(filepath.Clean(path), filepath.Join(root, "website", "snippets")+string(filepath.Separator)) {
				t.Errorf("%s includes %s, which is not a compiled snippet under website/snippets", name, m[1])
			}
			if region := m[2]; region != "" {
				if !strings.Contains(string(b), "// #region "+region+"\n") || !strings.Contains(string(b), "// #endregion "+region+"\n") {
					t.Errorf("%s includes region %q of %s, which has no // #region %s ... // #endregion %s markers", name, region, m[1], region, region)
				}
			}
		}
	}
	if imported == 0 {
		t.Fatal("no page includes a snippet")
	}
}

// websiteEnv is the test's environment without MESH_* variables, so snippets
// start standalone whatever the caller's shell has.
func websiteEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MESH_") {
			env = append(env, kv)
		}
	}
	return env
}

// TestWebsiteSnippetsRun runs the snippets that end by themselves, and serves
// the clustered-routes snippet, standalone, checking what the Distributed
// Primitives page says about them.
func TestWebsiteSnippetsRun(t *testing.T) {
	root := websiteRoot(t)
	bin := t.TempDir()
	for _, name := range []string{"fencing", "submit", "typed-work", "clustered-routes"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, name), "./website/snippets/"+name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", name, err, out)
		}
	}
	run := func(name string, want ...string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name))
		cmd.Env = websiteEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", name, err, out)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s output lacks %q:\n%s", name, w, out)
			}
		}
	}
	run("fencing", "write fenced: a newer promotion epoch has been seen")
	run("submit", "invoice INV-1001 refused: replica_required_unavailable",
		"invoice INV-1001: already submitted", "invoice INV-1001 was submitted before with another amount")
	run("typed-work", "invoice INV-1001: created, reference stl-INV-1001",
		"invoice INV-1001: duplicate, reference stl-INV-1001", "invoice INV-1001 (conflict)",
		"looked up INV-1001: reference stl-INV-1001")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	srv := exec.Command(filepath.Join(bin, "clustered-routes"))
	srv.Env = append(websiteEnv(), "HTTP_ADDR="+addr)
	var log bytes.Buffer
	srv.Stdout, srv.Stderr = &log, &log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		srv.Process.Kill()
		srv.Wait()
		if t.Failed() {
			t.Logf("clustered-routes log:\n%s", log.String())
		}
	}()
	get := func(path string, hdr ...string) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, nil, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, strings.TrimSpace(string(b))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if code, _, _ := get("/health"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("clustered-routes never answered /health")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, h, body := get("/todos"); code != 200 || body != "[]" ||
		!strings.HasPrefix(h.Get("X-Mesh-Continuity-Request-Key"), "http-route::todos.Store.List::") {
		t.Errorf("GET /todos = %d %q key %q", code, body, h.Get("X-Mesh-Continuity-Request-Key"))
	}
	if code, _, body := get("/todos/export"); code != 503 || body != `{"error":"replica_required_unavailable"}` {
		t.Errorf("standalone count-2 route = %d %s, want 503 replica_required_unavailable", code, body)
	}
	_, first, _ := get("/todos", "Idempotency-Key", "docs-k1")
	code, again, _ := get("/todos", "Idempotency-Key", "docs-k1")
	if code != 200 || again.Get("X-Served-Attempt") == "" || again.Get("X-Served-Attempt") != first.Get("X-Served-Attempt") ||
		!regexp.MustCompile(`^http-route::todos\.Store\.List::caller-[0-9a-f]{32}::docs-k1$`).MatchString(again.Get("X-Mesh-Continuity-Request-Key")) {
		t.Errorf("idempotent replay: %d, attempts %q then %q, key %q", code,
			first.Get("X-Served-Attempt"), again.Get("X-Served-Attempt"), again.Get("X-Mesh-Continuity-Request-Key"))
	}
	if code, _, body := get("/todos", "Idempotency-Key", "docs-k1", "Accept", "text/plain"); code != 409 || body != `{"error":"request_key_conflict"}` {
		t.Errorf("same key, other payload = %d %s, want 409 request_key_conflict", code, body)
	}
}

func TestWebsiteToolingMatchesCLI(t *testing.T) {
	root := websiteRoot(t)
	if out, err := websiteCommand(t, root, 5*time.Minute, nil, "bash", "website/scripts/gen-tooling.sh", "--check"); err != nil {
		t.Fatalf("website/scripts/gen-tooling.sh --check: %v\n%s", err, out)
	}
}

func TestWebsiteRailsMatchScripts(t *testing.T) {
	root := websiteRoot(t)
	if out, err := websiteCommand(t, root, 5*time.Minute, nil, "bash", "website/scripts/gen-rails.sh", "--check"); err != nil {
		t.Fatalf("website/scripts/gen-rails.sh --check: %v\n%s", err, out)
	}
}

// TestWebsiteFailureMapCoversEveryPhase: every phase a rail runs has a row in
// the failure inspection map of the Distributed Proof page.
func TestWebsiteFailureMapCoversEveryPhase(t *testing.T) {
	root := websiteRoot(t)
	page := websitePages(t, root)["distributed-proof.md"]
	_, mapText, ok := strings.Cut(page, "## Failure inspection map")
	if !ok {
		t.Fatal("distributed-proof.md has no Failure inspection map section")
	}
	mapText, _, _ = strings.Cut(mapText, "\n## ")
	files, err := filepath.Glob(filepath.Join(root, "website", "captured", "rail-*-phases.txt"))
	if err != nil || len(files) != 3 {
		t.Fatalf("want the phases of 3 rails in website/captured, got %v (%v)", files, err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, phase := range strings.Fields(string(b)) {
			if !regexp.MustCompile("(?m)^\\|[^\n]*`" + regexp.QuoteMeta(phase) + "`[^\n]*\\|").MatchString(mapText) {
				t.Errorf("%s: phase %s has no row in the failure inspection map", filepath.Base(f), phase)
			}
		}
	}
}

func TestWebsiteCapturedOutputMatchesProduct(t *testing.T) {
	root := websiteRoot(t)
	if out, err := websiteCommand(t, root, 10*time.Minute, nil, "bash", "website/scripts/capture-cli-output.sh", "--check"); err != nil {
		t.Fatalf("website/scripts/capture-cli-output.sh --check: %v\n%s", err, out)
	}
}

var envConst = regexp.MustCompile(`(?m)^\s*env\w+\s*=\s*"(MESH_[A-Z0-9_]+)"`)

// TestWebsiteEnvTableMatchesRuntime: the environment table on the Operating
// page lists exactly the variables the runtime reads (internal/cluster/env.go).
func TestWebsiteEnvTableMatchesRuntime(t *testing.T) {
	root := websiteRoot(t)
	src, err := os.ReadFile(filepath.Join(root, "internal", "cluster", "env.go"))
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, m := range envConst.FindAllStringSubmatch(string(src), -1) {
		code = append(code, m[1])
	}
	if len(code) == 0 {
		t.Fatal("found no MESH_* constants in env.go")
	}
	page := websitePages(t, root)["operating.md"]
	var table []string
	sc := bufio.NewScanner(strings.NewReader(page))
	for sc.Scan() {
		if m := regexp.MustCompile("^\\| `(MESH_[A-Z0-9_]+)` \\|").FindStringSubmatch(sc.Text()); m != nil {
			table = append(table, m[1])
		}
	}
	slices.Sort(code)
	slices.Sort(table)
	if !slices.Equal(code, table) {
		t.Errorf("operating.md environment table drifted from env.go\n  env.go:     %v\n  operating:  %v", code, table)
	}
}

var transitionConst = regexp.MustCompile(`(?:[Tt]ransition\w*\s*=\s*|Transition:\s*)"([a-z_]+)"`)

// TestWebsiteTransitionTableMatchesRuntime: every diagnostic transition the
// runtime can emit has a row in the troubleshooting table of the Operating
// page, and the table names no transition the runtime lacks.
func TestWebsiteTransitionTableMatchesRuntime(t *testing.T) {
	root := websiteRoot(t)
	var sources []string
	for _, pattern := range []string{"*.go", "internal/cluster/*.go", "internal/continuity/*.go", "internal/authority/*.go"} {
		files, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatal(err)
		}
		sources = append(sources, files...)
	}
	code := map[string]bool{}
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range transitionConst.FindAllStringSubmatch(string(b), -1) {
			code[m[1]] = true
		}
	}
	if len(code) < 10 {
		t.Fatalf("found only %d transition names in the runtime sources: %v", len(code), code)
	}
	page := websitePages(t, root)["operating.md"]
	_, table, ok := strings.Cut(page, "## Troubleshooting by diagnostic transition")
	if !ok {
		t.Fatal("operating.md has no troubleshooting section")
	}
	table, _, _ = strings.Cut(table, "\n### ")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cell, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		if !ok || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(cell, -1) {
			documented[m[1]] = true
		}
	}
	for name := range code {
		if !documented[name] {
			t.Errorf("transition %s is emitted by the runtime but has no row in operating.md", name)
		}
	}
	for name := range documented {
		if !code[name] {
			t.Errorf("operating.md documents transition %s, which the runtime does not emit", name)
		}
	}
}

// TestWebsiteReasonTableMatchesRuntime: the reasons table of operating.md
// lists every reason in continuity's documented set, and nothing else.
func TestWebsiteReasonTableMatchesRuntime(t *testing.T) {
	page := websitePages(t, websiteRoot(t))["operating.md"]
	_, table, ok := strings.Cut(page, "## Refusal and rejection reasons")
	if !ok {
		t.Fatal("operating.md has no reasons section")
	}
	table, _, _ = strings.Cut(table, "\n## ")
	documented := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		cell, _, ok := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		if !ok || !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cell, -1) {
			name := m[1]
			if i := strings.Index(name, ":"); i >= 0 && strings.Contains(name[i:], "<") {
				name = name[:i+1] // a reason with a detail: its prefix
			}
			documented[name] = true
		}
	}
	fixed, prefixes := continuity.DocumentedReasons()
	code := map[string]bool{}
	for _, r := range fixed {
		code[string(r)] = true
	}
	for _, p := range prefixes {
		code[p] = true
	}
	for name := range code {
		if !documented[name] {
			t.Errorf("reason %s is in the runtime's documented set but has no row in operating.md", name)
		}
	}
	for name := range documented {
		if !code[name] {
			t.Errorf("operating.md lists reason %s, which is not in the runtime's documented set", name)
		}
	}
}

// TestWebsiteClusteredFilesDocumented: every file meshc init --clustered
// generates (as captured) has a row in the Clustered Example file table.
func TestWebsiteClusteredFilesDocumented(t *testing.T) {
	root := websiteRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "website", "captured", "clustered-files.txt"))
	if err != nil {
		t.Fatalf("%v (run website/scripts/capture-cli-output.sh)", err)
	}
	page := websitePages(t, root)["clustered-example.md"]
	for _, f := range strings.Fields(string(b)) {
		if !strings.Contains(page, "| `"+f+"` |") {
			t.Errorf("clustered-example.md has no table row for the generated file %s", f)
		}
	}
}

// websiteTool finds a program the browser test needs, or skips (fails with
// MESH_REQUIRE_BROWSER=1) saying how to get it.
func websiteTool(t *testing.T, path, install string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err == nil {
		return p
	}
	msg := path + " not found; install it with: " + install
	if os.Getenv("MESH_REQUIRE_BROWSER") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + " (set MESH_REQUIRE_BROWSER=1 to make this a failure)")
	return ""
}

func TestWebsiteBuildAndBrowser(t *testing.T) {
	root := websiteRoot(t)
	npm := websiteTool(t, "npm", "apt-get install -y nodejs npm (Node.js 20 or newer)")
	node := websiteTool(t, "node", "apt-get install -y nodejs (Node.js 20 or newer)")
	chromium := websiteTool(t, cmp.Or(os.Getenv("MESH_CHROMIUM"), "/usr/bin/chromium"),
		"apt-get update && apt-get install -y chromium")

	// The build installs node_modules from package-lock.json when they are
	// missing or stale (scripts/ensure-deps.mjs), so this is the whole
	// fresh-machine story.
	out, err := websiteCommand(t, root, 15*time.Minute, nil, npm, "--prefix", "website", "run", "build")
	if err != nil {
		t.Fatalf("npm --prefix website run build: %v\n%s", err, out)
	}
	if !strings.Contains(out, "build complete") {
		t.Fatalf("npm --prefix website run build did not report completion:\n%s", out)
	}

	outDir := filepath.Join(root, ".tmp", "website")
	out, err = websiteCommand(t, root, 10*time.Minute, nil, node, "website/scripts/browser-check.mjs", "--out", outDir, "--chromium", chromium)
	t.Log(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("browser check: %v", err)
	}
	var report struct {
		Pages    []string `json:"pages"`
		Links    int      `json:"links"`
		Failures []string `json:"failures"`
	}
	b, err := os.ReadFile(filepath.Join(outDir, "browser-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &report); err != nil {
		t.Fatal(err)
	}
	want := []string{"/clustered-example.html", "/distributed-primitives.html", "/distributed-proof.html",
		"/getting-started.html", "/index.html", "/operating.html", "/production-backend-proof.html", "/security.html", "/tooling.html"}
	for _, p := range want {
		if !slices.Contains(report.Pages, p) {
			t.Errorf("built site has no %s (pages: %v)", p, report.Pages)
		}
	}
	if len(report.Failures) > 0 || report.Links == 0 {
		t.Errorf("browser report: %d links, failures: %v", report.Links, report.Failures)
	}
	shot, err := os.ReadFile(filepath.Join(outDir, "clustered-example.png"))
	if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG")) {
		t.Errorf("no PNG screenshot of the Clustered Example page in %s: %v", outDir, err)
	}
}
