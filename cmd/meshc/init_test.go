package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	meshcookie "meshgo.dev/mesh/internal/cookie"
	"meshgo.dev/mesh/internal/scaffold"
)

// repoRoot is the runtime source tree these tests run in, symlinks resolved.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if root, err = filepath.EvalSymlinks(root); err != nil {
		t.Fatal(err)
	}
	return root
}

// treeFiles lists the regular files below dir as sorted slash paths.
func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := scaffold.Manifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.Kind == scaffold.EntryFile {
			out = append(out, e.Path)
		}
	}
	return out
}

func TestInitMatrix(t *testing.T) {
	const forms = "meshc init <name>, meshc init --clustered <name>, or meshc init --template todo-api [--db sqlite|postgres] <name>"
	tests := []struct {
		name       string
		args       []string      // after "init"
		existing   bool          // "app" exists beforehand
		wantCode   int           //
		wantStdout string        // exact
		wantStderr string        // exact
		kind       scaffold.Kind // created template, "" when nothing is created
	}{
		{name: "hello", args: []string{"app"},
			wantStdout: "Created project 'app'\n", kind: scaffold.KindHello},
		{name: "clustered", args: []string{"--clustered", "app"},
			wantStdout: "Created clustered project 'app'\n", kind: scaffold.KindClustered},
		{name: "clustered flag after the name", args: []string{"app", "--clustered"},
			wantStdout: "Created clustered project 'app'\n", kind: scaffold.KindClustered},
		{name: "todo-api defaults to sqlite", args: []string{"--template", "todo-api", "app"},
			wantStdout: "Created todo-api project 'app'\n", kind: scaffold.KindTodoSQLite},
		{name: "todo-api sqlite", args: []string{"--template=todo-api", "--db", "sqlite", "app"},
			wantStdout: "Created todo-api project 'app'\n", kind: scaffold.KindTodoSQLite},
		{name: "todo-api postgres, flags around the name", args: []string{"--template", "todo-api", "app", "--db=postgres"},
			wantStdout: "Created todo-api project 'app'\n", kind: scaffold.KindTodoPostgres},

		{name: "unknown template", args: []string{"--template", "other", "app"}, wantCode: 1,
			wantStderr: "error: unknown init template 'other'; supported templates: todo-api\n"},
		{name: "unknown template with --db", args: []string{"--template", "other", "--db", "postgres", "app"}, wantCode: 1,
			wantStderr: "error: unknown init template 'other'; supported templates: todo-api; --db only applies to meshc init --template todo-api [--db sqlite|postgres] <name>\n"},
		{name: "--db alone", args: []string{"--db", "postgres", "app"}, wantCode: 1,
			wantStderr: "error: --db only applies to the todo-api template: meshc init --template todo-api --db sqlite|postgres <name>\n"},
		{name: "--clustered with --db", args: []string{"--clustered", "--db", "sqlite", "app"}, wantCode: 1,
			wantStderr: "error: --db only applies to the todo-api template: meshc init --template todo-api --db sqlite|postgres <name>\n"},
		{name: "--clustered with --template", args: []string{"--clustered", "--template", "todo-api", "app"}, wantCode: 1,
			wantStderr: "error: --clustered and --template cannot be combined; use one of: " + forms + "\n"},
		{name: "bad --db", args: []string{"--template", "todo-api", "--db", "mysql", "app"}, wantCode: 1,
			wantStderr: "error: unknown --db value 'mysql'; supported: sqlite, postgres\n"},
		{name: "missing name", args: nil, wantCode: 1,
			wantStderr: "error: meshc init needs a project name: " + forms + "\n"},
		{name: "missing name after a flag", args: []string{"--clustered"}, wantCode: 1,
			wantStderr: "error: meshc init needs a project name: " + forms + "\n"},
		{name: "two names", args: []string{"app", "other"}, wantCode: 1,
			wantStderr: "error: meshc init takes one project name, got 2 (app other): " + forms + "\n"},
		{name: "unknown flag", args: []string{"--bogus", "app"}, wantCode: 1,
			wantStderr: "error: flag provided but not defined: -bogus; run 'meshc init --help'\n"},
		{name: "path as name", args: []string{"../app"}, wantCode: 1,
			wantStderr: "error: invalid project name '../app': use letters, digits, '-' and '_' (dots only between them); the name becomes the directory, module and binary name\n"},
		{name: "existing directory", args: []string{"app"}, existing: true, wantCode: 1,
			wantStderr: "error: Directory 'app' already exists; choose another project name or remove that directory\n"},
		{name: "existing directory, clustered", args: []string{"--clustered", "app"}, existing: true, wantCode: 1,
			wantStderr: "error: Directory 'app' already exists; choose another project name or remove that directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.kind != "" && !scaffold.Has(tt.kind) {
				t.Fatalf("the %s template is missing from internal/scaffold/templates", tt.kind)
			}
			dir := t.TempDir()
			if tt.existing {
				if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "app", "mine.txt"), []byte("keep"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			before := treeFiles(t, dir)
			res := runMeshc(t, dir, nil, append([]string{"init"}, tt.args...)...)
			if res.code != tt.wantCode || res.stdout != tt.wantStdout || res.stderr != tt.wantStderr {
				t.Errorf("meshc init %s:\n exit %d, stdout %q, stderr %q\nwant exit %d, stdout %q, stderr %q",
					strings.Join(tt.args, " "), res.code, res.stdout, res.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			got := treeFiles(t, dir)
			if tt.kind == "" {
				if !slices.Equal(got, before) {
					t.Errorf("a failed init changed the directory: before %v, after %v", before, got)
				}
				return
			}
			want, err := scaffold.Files(tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				want[i] = "app/" + want[i]
			}
			if !slices.Equal(got, want) {
				t.Errorf("created files:\n %v\nwant (the %s template):\n %v", got, tt.kind, want)
			}
		})
	}
}

func TestInitHelp(t *testing.T) {
	for _, args := range [][]string{{"init", "--help"}, {"init", "-h"}, {"init", "app", "--help"}} {
		dir := t.TempDir()
		res := runMeshc(t, dir, nil, args...)
		if res.code != 0 || !strings.HasPrefix(res.stdout, "Usage:\n  meshc init <name>") || res.stderr != "" {
			t.Errorf("meshc %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
		if files := treeFiles(t, dir); len(files) != 0 {
			t.Errorf("meshc %s created %v", strings.Join(args, " "), files)
		}
	}
}

// fakeSource makes a directory that looks like the runtime source tree.
// TestInitVendorBuildsWithoutCheckout generates the PostgreSQL starter with
// --vendor and builds and vets it (its tests included) with the go command,
// offline: the runtime comes from third_party/mesh, not from a checkout.
func TestInitVendorBuildsWithoutCheckout(t *testing.T) {
	parent := newProject(t, "vendored", "--vendor", "--template", "todo-api", "--db", "postgres")
	project := filepath.Join(parent, "vendored")
	if got, want := replaceLine(t, project), "replace meshgo.dev/mesh => ./third_party/mesh"; got != want {
		t.Fatalf("replace line = %q, want %q", got, want)
	}
	vendored := filepath.Join(project, "third_party", "mesh")
	b, err := os.ReadFile(filepath.Join(vendored, "go.mod"))
	if err != nil || !strings.HasPrefix(string(b), "module meshgo.dev/mesh\n") {
		t.Fatalf("third_party/mesh/go.mod: %v\n%s", err, b)
	}
	if _, err := os.Stat(filepath.Join(vendored, "VENDORED.md")); err != nil {
		t.Error(err)
	}
	var files []string
	filepath.WalkDir(vendored, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(vendored, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	for _, want := range []string{"node.go", "meshtest/faultnet.go"} {
		if !slices.Contains(files, want) {
			t.Errorf("third_party/mesh lacks %s", want)
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, "cmd/") || strings.HasPrefix(f, "e2e/") || strings.HasPrefix(f, "examples/") {
			t.Errorf("third_party/mesh holds %s, which a project never imports", f)
		}
	}
	env := []string{"GOFLAGS=-mod=mod", "GOPROXY=off"}
	for _, args := range [][]string{{"go", "list", "-m", "-f", "{{.Replace.Dir}}", "meshgo.dev/mesh"}, {"go", "build", "./..."}, {"go", "vet", "./..."}} {
		res := runProcess(t, project, env, args[0], args[1:]...)
		if res.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
		if args[1] == "list" && strings.TrimSpace(res.stdout) != vendored {
			t.Errorf("meshgo.dev/mesh resolves to %q, want %s", strings.TrimSpace(res.stdout), vendored)
		}
	}
}

func fakeSource(t *testing.T, goVersion string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "mesh-src")
	if err := os.MkdirAll(filepath.Join(dir, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	gomod := "module meshgo.dev/mesh\n\ngo " + goVersion + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func replaceLine(t *testing.T, project string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(project, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "replace ") {
			return line
		}
	}
	t.Fatalf("no replace line in %s/go.mod:\n%s", project, b)
	return ""
}

func TestInitRuntimeSource(t *testing.T) {
	root := repoRoot(t)
	fake := fakeSource(t, "1.99.1")
	notSource := t.TempDir()
	if err := os.WriteFile(filepath.Join(notSource, "go.mod"), []byte("module example.com/other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		cwd         string // "" = a fresh temp dir
		env         []string
		flags       []string
		wantReplace string // replace line; "" when init must fail
		wantErr     string // stderr substring when init fails
		wantGo      string // go directive
	}{
		{name: "the tree meshc was built from", wantReplace: "replace meshgo.dev/mesh => " + root},
		{name: "MESH_SOURCE_DIR", env: []string{"MESH_SOURCE_DIR=" + fake},
			wantReplace: "replace meshgo.dev/mesh => " + fake, wantGo: "go 1.99.1"},
		{name: "--mesh-source wins over MESH_SOURCE_DIR", env: []string{"MESH_SOURCE_DIR=" + notSource}, flags: []string{"--mesh-source", fake},
			wantReplace: "replace meshgo.dev/mesh => " + fake},
		{name: "inside the source tree: relative", cwd: filepath.Join(fake, "examples"), env: []string{"MESH_SOURCE_DIR=" + fake},
			wantReplace: "replace meshgo.dev/mesh => ../.."},
		{name: "MESH_SOURCE_DIR without the runtime go.mod", env: []string{"MESH_SOURCE_DIR=" + notSource},
			wantErr: "error: MESH_SOURCE_DIR=" + notSource + " is not the Mesh runtime source: go.mod does not declare module meshgo.dev/mesh; set MESH_SOURCE_DIR to the directory holding the go.mod of meshgo.dev/mesh\n"},
		{name: "--mesh-source without a go.mod", flags: []string{"--mesh-source", t.TempDir()},
			wantErr: "is not the Mesh runtime source: no go.mod there; set MESH_SOURCE_DIR"},
		{name: "--mesh-source given empty", flags: []string{"--mesh-source="},
			wantErr: "error: --mesh-source needs a directory: the Mesh checkout whose go.mod declares meshgo.dev/mesh, e.g. --mesh-source ~/src/mesh\n"},
		{name: "--vendor", flags: []string{"--vendor"}, wantReplace: "replace meshgo.dev/mesh => ./third_party/mesh"},
		{name: "--vendor inside the source tree stays local", cwd: filepath.Join(root, "examples"), flags: []string{"--vendor"},
			wantReplace: "replace meshgo.dev/mesh => ./third_party/mesh"},
		{name: "--vendor from a tree without the runtime packages", env: []string{"MESH_SOURCE_DIR=" + fake}, flags: []string{"--vendor"},
			wantErr: "error: copy the runtime from " + fake + " into 'srcapp': package meshgo.dev/mesh/meshtest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cwd := tt.cwd
			if cwd == "" {
				cwd = t.TempDir()
			}
			res := runMeshc(t, cwd, tt.env, append(append([]string{"init", "--clustered"}, tt.flags...), "srcapp")...)
			project := filepath.Join(cwd, "srcapp")
			t.Cleanup(func() { os.RemoveAll(project) })
			if tt.wantReplace == "" {
				if res.code != 1 || !strings.Contains(res.stderr, tt.wantErr) {
					t.Errorf("exit %d, stderr %q; want exit 1 and %q", res.code, res.stderr, tt.wantErr)
				}
				if _, err := os.Stat(project); err == nil {
					t.Errorf("a failed init created %s", project)
				}
				return
			}
			if res.code != 0 {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			if got := replaceLine(t, project); got != tt.wantReplace {
				t.Errorf("replace line = %q, want %q", got, tt.wantReplace)
			}
			if tt.wantGo != "" {
				if b, _ := os.ReadFile(filepath.Join(project, "go.mod")); !strings.Contains(string(b), "\n"+tt.wantGo+"\n") {
					t.Errorf("go.mod lacks %q:\n%s", tt.wantGo, b)
				}
			}
		})
	}
}

func TestFindMeshSource(t *testing.T) {
	root := repoRoot(t)
	fake := fakeSource(t, "1.26.8")
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	src, err := findMeshSource("", getenv(nil))
	if err != nil || src.Dir != root {
		t.Errorf("default discovery = %q, %v; want %q (the tree this test binary was built from)", src.Dir, err, root)
	}
	src, err = findMeshSource("", getenv(map[string]string{sourceEnv: fake}))
	if err != nil || src.Dir != fake || src.GoVersion != "1.26.8" {
		t.Errorf("MESH_SOURCE_DIR discovery = %+v, %v; want %q", src, err, fake)
	}
	src, err = findMeshSource(fake, getenv(map[string]string{sourceEnv: "/nonexistent"}))
	if err != nil || src.Dir != fake {
		t.Errorf("flag discovery = %+v, %v; want %q", src, err, fake)
	}
	if _, err := findMeshSource(filepath.Join(fake, "examples"), getenv(nil)); err == nil {
		t.Errorf("an explicit directory below the source was accepted; it must hold the go.mod itself")
	}
}

func TestReplaceTarget(t *testing.T) {
	src := fakeSource(t, "1.26.8")
	outside := t.TempDir()
	tests := []struct{ project, want string }{
		{filepath.Join(src, "examples", "app"), "../.."},
		{filepath.Join(src, "app"), ".."},
		{filepath.Join(src, "a", "b", "c"), "../../.."},
		{filepath.Join(outside, "app"), src},
		{src + "-sibling", src}, // a name prefix is not containment
	}
	for _, tt := range tests {
		got, err := replaceTarget(tt.project, src)
		if err != nil || got != tt.want {
			t.Errorf("replaceTarget(%q) = %q, %v; want %q", tt.project, got, err, tt.want)
		}
	}
}

// examples maps each committed example to the meshc init command that
// generates it. An example is required once its template kind exists.
var examples = []struct {
	dir  string        // under examples/
	kind scaffold.Kind // template it is generated from
	args []string      // meshc init flags
}{
	{"hello-cluster", scaffold.KindClustered, []string{"--clustered"}},
	{"todo-sqlite", scaffold.KindTodoSQLite, []string{"--template", "todo-api"}},
	{"todo-postgres", scaffold.KindTodoPostgres, []string{"--template", "todo-api", "--db", "postgres"}},
}

// replaceDirective matches the machine-specific line of a generated go.mod.
var replaceDirective = regexp.MustCompile(`(?m)^replace meshgo\.dev/mesh => .*$`)

// projectManifest is scaffold.Manifest with go.mod files normalised: the
// replace target is written relative inside the source tree (../.. in
// examples/) and absolute elsewhere, so a tree generated in a temporary
// directory differs from the committed example on that one line by
// construction. It is compared as "replace meshgo.dev/mesh => <mesh-source>".
// The binary meshc build writes into the project (ignored by the generated
// .gitignore) is left out too, and so is .env: meshc init writes a fresh
// random cookie there on every run, so examples/ never commits one (its
// .gitignore ignores it; TestGeneratedEnvFileIsPrivate checks both).
func projectManifest(dir, name string) ([]scaffold.Entry, error) {
	entries, err := scaffold.Manifest(dir)
	if err != nil {
		return nil, err
	}
	out := entries[:0]
	for _, e := range entries {
		if (e.Path == name || e.Path == ".env") && e.Kind == scaffold.EntryFile {
			continue
		}
		if e.Kind == scaffold.EntryFile && path.Base(e.Path) == "go.mod" {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(e.Path)))
			if err != nil {
				return nil, err
			}
			b = replaceDirective.ReplaceAll(b, []byte("replace meshgo.dev/mesh => <mesh-source>"))
			e.Size, e.SHA256 = scaffold.HashBytes(b)
		}
		out = append(out, e)
	}
	return out, nil
}

// exampleDrift compares a committed example with a freshly generated tree.
func exampleDrift(example, generated, name string) (scaffold.Drift, error) {
	want, err := projectManifest(generated, name)
	if err != nil {
		return scaffold.Drift{}, err
	}
	got, err := projectManifest(example, name)
	if err != nil {
		return scaffold.Drift{}, err
	}
	return scaffold.Compare(want, got), nil
}

// TestExamplesMatchScaffold regenerates every example with meshc init and
// fails, naming every missing, extra and changed path, when the committed
// tree differs.
func TestExamplesMatchScaffold(t *testing.T) {
	root := repoRoot(t)
	for _, ex := range examples {
		t.Run(ex.dir, func(t *testing.T) {
			exampleDir := filepath.Join(root, "examples", ex.dir)
			_, statErr := os.Stat(exampleDir)
			regen := fmt.Sprintf("rm -rf examples/%s && (cd examples && meshc init %s %s)", ex.dir, strings.Join(ex.args, " "), ex.dir)
			if !scaffold.Has(ex.kind) {
				t.Fatalf("the %s template is missing from internal/scaffold/templates; examples/%s cannot be checked", ex.kind, ex.dir)
			}
			if statErr != nil {
				t.Fatalf("examples/%s is missing but the %s template exists; generate it with: %s", ex.dir, ex.kind, regen)
			}
			parent := newProject(t, ex.dir, ex.args...)
			d, err := exampleDrift(exampleDir, filepath.Join(parent, ex.dir), ex.dir)
			if err != nil {
				t.Fatal(err)
			}
			if !d.Empty() {
				t.Errorf("example=%s target=examples/%s %s\nregenerate with: %s", ex.dir, ex.dir, d, regen)
			}
		})
	}
}

// TestExampleDriftIsNamed proves the parity check fails on hand edits and
// names each path in the right bucket, and that it ignores only the replace
// target of go.mod.
func TestExampleDriftIsNamed(t *testing.T) {
	parent := newProject(t, "hello-cluster", "--clustered")
	generated := filepath.Join(parent, "hello-cluster")
	copyDir := filepath.Join(t.TempDir(), "hello-cluster")
	if err := os.CopyFS(copyDir, os.DirFS(generated)); err != nil {
		t.Fatal(err)
	}
	if d, err := exampleDrift(copyDir, generated, "hello-cluster"); err != nil || !d.Empty() {
		t.Fatalf("an exact copy drifts: %v %v", d, err)
	}

	// A different replace target is not drift.
	gomod := filepath.Join(copyDir, "go.mod")
	b, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	b = replaceDirective.ReplaceAll(b, []byte("replace meshgo.dev/mesh => ../.."))
	if err := os.WriteFile(gomod, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if d, _ := exampleDrift(copyDir, generated, "hello-cluster"); !d.Empty() {
		t.Fatalf("a different replace target counts as drift: %s", d)
	}

	// Hand edits.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Rename(filepath.Join(copyDir, "work", "work_test.go"), filepath.Join(copyDir, "work", "add_test.go")))
	must(os.Remove(filepath.Join(copyDir, "README.md")))
	must(os.WriteFile(filepath.Join(copyDir, "HAND_EDITED.txt"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(copyDir, "main.go"), []byte("package main\n"), 0o644))
	must(os.WriteFile(gomod, []byte(strings.Replace(string(b), "module hello-cluster", "module renamed", 1)), 0o644))

	d, err := exampleDrift(copyDir, generated, "hello-cluster")
	if err != nil {
		t.Fatal(err)
	}
	want := scaffold.Drift{
		Missing: []string{"README.md", "work/work_test.go"},
		Extra:   []string{"HAND_EDITED.txt", "work/add_test.go"},
		Changed: []string{"go.mod", "main.go"},
	}
	if d.String() != want.String() {
		t.Errorf("drift = %s\nwant    %s", d, want)
	}

	// A symbolic link is refused rather than followed.
	must(os.Symlink(filepath.Join(generated, "README.md"), filepath.Join(copyDir, "README.md")))
	if _, err := exampleDrift(copyDir, generated, "hello-cluster"); err == nil || !strings.Contains(err.Error(), "README.md is a symbolic link") {
		t.Errorf("symlink in an example: err = %v, want a symbolic link error naming README.md", err)
	}
}

// TestGeneratedEnvFileIsPrivate checks the cookie story of the clustered
// starters: meshc init writes a fresh random cookie into .env, readable by
// the owner only and ignored by the generated .gitignore; no other generated
// file holds it or a placeholder cookie; and no example commits a .env.
func TestGeneratedEnvFileIsPrivate(t *testing.T) {
	root := repoRoot(t)
	cookies := map[string]bool{}
	for _, ex := range examples {
		if ex.kind == scaffold.KindTodoSQLite {
			continue // no cluster, no cookie
		}
		t.Run(ex.dir, func(t *testing.T) {
			dir := filepath.Join(newProject(t, ex.dir, ex.args...), ex.dir)
			envPath := filepath.Join(dir, ".env")
			st, err := os.Stat(envPath)
			if err != nil {
				t.Fatalf("meshc init wrote no .env: %v", err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf(".env mode %04o, want 0600", st.Mode().Perm())
			}
			b, err := os.ReadFile(envPath)
			if err != nil {
				t.Fatal(err)
			}
			m := regexp.MustCompile(`(?m)^MESH_CLUSTER_COOKIE=(.*)$`).FindSubmatch(b)
			if m == nil {
				t.Fatalf(".env has no MESH_CLUSTER_COOKIE line:\n%s", b)
			}
			c := string(m[1])
			if err := meshcookie.Check("MESH_CLUSTER_COOKIE", c); err != nil {
				t.Fatalf("the generated cookie is refused: %v", err)
			}
			if cookies[c] {
				t.Fatalf("two projects got the same cookie")
			}
			cookies[c] = true
			ignore, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
			if err != nil || !slices.Contains(strings.Split(string(ignore), "\n"), ".env") {
				t.Errorf(".gitignore does not ignore .env (%v):\n%s", err, ignore)
			}
			for _, f := range treeFiles(t, dir) {
				if f == ".env" {
					continue
				}
				b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f)))
				if err != nil {
					t.Fatal(err)
				}
				low := strings.ToLower(string(b))
				if strings.Contains(string(b), c) || strings.Contains(low, "change-me") || strings.Contains(low, "dev-cookie") {
					t.Errorf("%s holds the cookie or a placeholder cookie", f)
				}
			}
			if _, err := os.Stat(filepath.Join(root, "examples", ex.dir, ".env")); err == nil {
				if out, err := exec.Command("git", "-C", root, "ls-files", "--error-unmatch", "examples/"+ex.dir+"/.env").CombinedOutput(); err == nil {
					t.Errorf("examples/%s/.env is committed (%s); it must stay local", ex.dir, out)
				}
			}
		})
	}
}

// composePort is one entry of a compose service's ports list.
type composePort struct {
	service, hostIP, host, container string
}

// composeFacts reads what TestComposeKeepsClusterPrivate needs from a compose
// file: every published port and every service's MESH_CLUSTER_COOKIE and
// MESH_CLUSTER_PORT values. It understands the block style our template
// uses (two-space indents, "- " list items, "#" comments) and fails on a
// ports entry it cannot read, so a new syntax cannot slip past the check.
func composeFacts(t *testing.T, b []byte) (ports []composePort, env map[string]map[string]string) {
	t.Helper()
	env = map[string]map[string]string{}
	walkCompose(b, func(l composeLine) {
		if l.service != "" && env[l.service] == nil {
			env[l.service] = map[string]string{}
		}
		switch {
		case l.indent <= 4:
		case l.section == "ports" && strings.HasPrefix(l.text, "- "):
			v := strings.Trim(strings.TrimSpace(strings.TrimPrefix(l.text, "- ")), `"'`)
			parts := strings.Split(v, ":")
			var p composePort
			switch len(parts) {
			case 2:
				p = composePort{service: l.service, host: parts[0], container: parts[1]}
			case 3:
				p = composePort{service: l.service, hostIP: parts[0], host: parts[1], container: parts[2]}
			default:
				t.Fatalf("line %d: ports entry %q is not [ip:]host:container", l.number, v)
			}
			ports = append(ports, p)
		case l.section == "ports":
			t.Fatalf("line %d: ports entry %q is not a short-syntax list item", l.number, l.text)
		case l.section == "environment" && l.indent == 6:
			k, v, ok := strings.Cut(l.text, ":")
			if !ok {
				t.Fatalf("line %d: environment entry %q is not key: value", l.number, l.text)
			}
			env[l.service][k] = strings.Trim(strings.TrimSpace(v), `"'`)
		}
	})
	return ports, env
}

// composeLine is one non-blank line inside the services: block of a compose
// file, with the service and the section (ports, environment, healthcheck…)
// it belongs to.
type composeLine struct {
	number           int    // 1-based line number
	indent           int    // leading spaces
	text             string // the line without indent and comment
	service, section string
}

// walkCompose calls visit for every line under services: of a compose file
// in the block style our templates use (two-space indents, "- " list items,
// "#" comments). Service lines (indent 2) and section lines (indent 4) are
// visited too, with the service or section they open already set.
func walkCompose(b []byte, visit func(composeLine)) {
	var service, section string
	inServices := false
	for i, raw := range strings.Split(string(b), "\n") {
		line := stripComment(raw)
		trimmed := strings.TrimSpace(line)
		if trimmed == "" {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 0:
			inServices = trimmed == "services:"
			service, section = "", ""
			continue
		case !inServices:
			continue
		case indent == 2:
			service, section = strings.TrimSuffix(trimmed, ":"), ""
		case indent == 4:
			section = strings.TrimSuffix(strings.SplitN(trimmed, ":", 2)[0], ":")
		}
		visit(composeLine{number: i + 1, indent: indent, text: trimmed, service: service, section: section})
	}
}

// TestComposeKeepsClusterPrivate parses the compose file meshc init writes
// for the PostgreSQL starter (and the committed example) and checks that no
// cluster port is published beyond loopback and that no cookie is in it: the
// nodes read MESH_CLUSTER_COOKIE from the git-ignored .env.
func TestComposeKeepsClusterPrivate(t *testing.T) {
	generated := filepath.Join(newProject(t, "todo-postgres", "--template", "todo-api", "--db", "postgres"), "todo-postgres")
	envFile, err := os.ReadFile(filepath.Join(generated, ".env"))
	if err != nil {
		t.Fatal(err)
	}
	_, cookie, _ := strings.Cut(strings.TrimSpace(string(regexp.MustCompile(`(?m)^MESH_CLUSTER_COOKIE=.*$`).Find(envFile))), "=")
	if cookie == "" {
		t.Fatal("generated .env has no cookie")
	}
	for _, file := range []string{filepath.Join(generated, "docker-compose.yml"), filepath.Join(repoRoot(t), "examples", "todo-postgres", "docker-compose.yml")} {
		t.Run(filepath.Base(filepath.Dir(file)), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), cookie) {
				t.Fatal("the compose file contains the cookie")
			}
			ports, env := composeFacts(t, b)
			nodes := 0
			for service, vars := range env {
				v, ok := vars["MESH_CLUSTER_COOKIE"]
				if !ok {
					continue
				}
				nodes++
				if !strings.HasPrefix(v, "${MESH_CLUSTER_COOKIE") || !strings.HasSuffix(v, "}") {
					t.Errorf("service %s: MESH_CLUSTER_COOKIE is %q, want a ${MESH_CLUSTER_COOKIE...} reference to .env", service, v)
				}
			}
			if nodes != 2 {
				t.Fatalf("found %d services with a cluster cookie, want the two nodes", nodes)
			}
			published := 0
			for _, p := range ports {
				clusterPort := env[p.service]["MESH_CLUSTER_PORT"]
				if clusterPort == "" {
					clusterPort = "4370"
				}
				if p.container != clusterPort {
					continue
				}
				published++
				if p.hostIP != "127.0.0.1" && p.hostIP != "[::1]" {
					t.Errorf("service %s publishes cluster port %s on %q (all interfaces when empty), want loopback only", p.service, p.container, p.hostIP)
				}
			}
			if len(ports) == 0 {
				t.Fatal("no ports found: the parser no longer reads this file")
			}
			t.Logf("%d ports, %d cluster ports on loopback", len(ports), published)
		})
	}

	// The check fails on the file the starter used to ship.
	bad := []byte("services:\n  node1:\n    environment:\n      MESH_CLUSTER_COOKIE: change-me-in-production\n    ports:\n      - \"8080:8080\"\n      - \"4370:4370\"\n")
	ports, env := composeFacts(t, bad)
	if len(ports) != 2 || ports[1].hostIP != "" || ports[1].container != "4370" || env["node1"]["MESH_CLUSTER_COOKIE"] != "change-me-in-production" {
		t.Fatalf("parser misread the old file: %+v %+v", ports, env)
	}
}

// stripComment drops a YAML comment: a '#' at the start or after white
// space, outside quotes.
func stripComment(line string) string {
	var quote byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}
