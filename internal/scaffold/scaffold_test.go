package scaffold

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

var updateGoSum = flag.Bool("update-gosum", false,
	"regenerate templates/<kind>/go.sum with go mod tidy (needs the Go module proxy)")

func TestOutputPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"main.go.tmpl", "main.go"},
		{"go.sum", "go.sum"},
		{"work/work.go.tmpl", "work/work.go"},
		{"gitignore", ".gitignore"},
		{"gitignore.tmpl", ".gitignore"},
		{"deploy/dockerignore", "deploy/.dockerignore"},
		{"dot-env.example.tmpl", ".env.example"},
		{"sub/dot-keep", "sub/.keep"},
		{"dot-dir/x", "dot-dir/x"}, // only file names are renamed
		{"README.md.tmpl", "README.md"},
		{"notgitignore", "notgitignore"},
	}
	for _, tt := range tests {
		if got := outputPath(tt.in); got != tt.want {
			t.Errorf("outputPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestKindsHasBuiltInTemplates(t *testing.T) {
	kinds := Kinds()
	for _, k := range []Kind{KindHello, KindClustered} {
		if !slices.Contains(kinds, k) {
			t.Errorf("Kinds() = %v, missing %s", kinds, k)
		}
	}
	if !slices.IsSorted(kinds) {
		t.Errorf("Kinds() = %v, not sorted", kinds)
	}
}

// TestTemplatesHoldNoGoSources keeps the repository buildable: a template file
// ending in .go (or a go.mod) would be compiled by the repository's own
// go build ./..., with the project's imports, and fail there.
func TestTemplatesHoldNoGoSources(t *testing.T) {
	err := fs.WalkDir(templates, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasSuffix(p, ".go") || filepath.Base(p) == "go.mod" {
			t.Errorf("%s: store it as %s.tmpl so the repository's build ignores it", p, filepath.Base(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		kind Kind
		want []string
	}{
		{KindHello, []string{".gitignore", "README.md", "go.mod", "go.sum", "main.go", "main_test.go"}},
		{KindClustered, []string{".env", ".gitignore", "README.md", "go.mod", "go.sum", "main.go", "work/work.go", "work/work_test.go"}},
	}
	for _, tt := range tests {
		got, err := Files(tt.kind)
		if err != nil {
			t.Fatalf("Files(%s): %v", tt.kind, err)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("Files(%s) = %v, want %v", tt.kind, got, tt.want)
		}
	}
	if _, err := Files("nope"); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Files(nope) error = %v, want ErrUnknownKind", err)
	}
}

func testData(name string) Data {
	return Data{Name: name, Module: name, MeshModule: MeshModule, MeshReplace: "../mesh", GoVersion: "1.26.8"}
}

func TestGenerateWritesRenderedFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	files, err := Generate(dir, KindClustered, testData("demo"))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Files(KindClustered)
	if !slices.Equal(files, want) {
		t.Errorf("Generate returned %v, want %v", files, want)
	}
	gomod := readFile(t, filepath.Join(dir, "go.mod"))
	// The indirect block is the template's, as written: go mod tidy's list
	// for the runtime's dependencies, which TestGeneratedProjectsBuild keeps
	// complete.
	indirect, ok := indirectBlock(readFile(t, filepath.Join("templates", string(KindClustered), "go.mod.tmpl")))
	if !ok || !strings.Contains(indirect, "github.com/jackc/pgx/v5") {
		t.Fatalf("the clustered template's go.mod has no block of indirect requirements with the runtime's: %q", indirect)
	}
	wantMod := "module demo\n\ngo 1.26.8\n\nrequire meshgo.dev/mesh v0.0.0-00010101000000-000000000000\n\n" +
		indirect + "\nreplace meshgo.dev/mesh => ../mesh\n"
	if gomod != wantMod {
		t.Errorf("go.mod =\n%s\nwant\n%s", gomod, wantMod)
	}
	if got := readFile(t, filepath.Join(dir, ".gitignore")); got != "/demo\n.env\n" {
		t.Errorf(".gitignore = %q", got)
	}
	// .env holds a fresh cookie and is private to its owner.
	if env := readFile(t, filepath.Join(dir, ".env")); !strings.Contains(env, "\nMESH_CLUSTER_COOKIE=") {
		t.Errorf(".env has no cookie:\n%s", env)
	}
	if st, err := os.Stat(filepath.Join(dir, ".env")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf(".env: %v mode %v, want 0600", err, st.Mode().Perm())
	}
	data := testData("given")
	data.Cookie = "given-cookie-Lr4Kc8Nw3Tb6Hp1Zs5Jd0Fg2Qm"
	given := filepath.Join(t.TempDir(), "given")
	if _, err := Generate(given, KindClustered, data); err != nil {
		t.Fatal(err)
	}
	if env := readFile(t, filepath.Join(given, ".env")); !strings.Contains(env, "\nMESH_CLUSTER_COOKIE="+data.Cookie+"\n") {
		t.Errorf(".env does not hold Data.Cookie:\n%s", env)
	}
	if main := readFile(t, filepath.Join(dir, "main.go")); !strings.Contains(main, `_ "demo/work"`) {
		t.Errorf("main.go does not import demo/work:\n%s", main)
	}
	// No temporary sibling is left next to the project.
	entries, _ := os.ReadDir(filepath.Dir(dir))
	if len(entries) != 1 {
		t.Errorf("parent holds %d entries, want only the project", len(entries))
	}
}

func TestGenerateDefaults(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plain")
	if _, err := Generate(dir, KindHello, Data{Name: "plain", MeshReplace: "/src/mesh"}); err != nil {
		t.Fatal(err)
	}
	gomod := readFile(t, filepath.Join(dir, "go.mod"))
	for _, want := range []string{"module plain\n", "go " + DefaultGoVersion + "\n", "replace meshgo.dev/mesh => /src/mesh\n"} {
		if !strings.Contains(gomod, want) {
			t.Errorf("go.mod lacks %q:\n%s", want, gomod)
		}
	}
}

func TestGenerateRefusesExistingDir(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(marker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Generate(dir, KindHello, testData("x"))
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Generate into an existing dir: err = %v, want fs.ErrExist", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("existing dir changed: %d entries", len(entries))
	}
}

func TestGenerateFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name string
		fsys fstest.MapFS
	}{
		{"template error", fstest.MapFS{
			"templates/k/a.txt":     {Data: []byte("fine")},
			"templates/k/b.md.tmpl": {Data: []byte("{{.NoSuchField}}")},
		}},
		{"write error after a partial write", fstest.MapFS{
			// dot-x is written as the file .x, then .x/y needs .x as a directory.
			"templates/k/a.txt": {Data: []byte("a")},
			"templates/k/dot-x": {Data: []byte("x")},
			"templates/k/.x/y":  {Data: []byte("y")},
		}},
		{"two files write one path", fstest.MapFS{
			"templates/k/x.txt":      {Data: []byte("1")},
			"templates/k/x.txt.tmpl": {Data: []byte("2")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			_, err := generate(tt.fsys, filepath.Join(parent, "p"), "k", testData("p"))
			if err == nil {
				t.Fatal("generate succeeded, want an error")
			}
			if entries, _ := os.ReadDir(parent); len(entries) != 0 {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Errorf("failed generate left %v behind (err: %v)", names, err)
			}
		})
	}
}

func TestGenerateMakesScriptsExecutable(t *testing.T) {
	fsys := fstest.MapFS{
		"templates/k/scripts/run.sh": {Data: []byte("#!/bin/sh\n")},
		"templates/k/notes.txt":      {Data: []byte("n")},
	}
	dir := filepath.Join(t.TempDir(), "p")
	if _, err := generate(fsys, dir, "k", testData("p")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]fs.FileMode{"scripts/run.sh": 0o755, "notes.txt": 0o644} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", name, st.Mode().Perm(), want)
		}
	}
}

func TestGenerateUnknownKindCreatesNothing(t *testing.T) {
	parent := t.TempDir()
	_, err := Generate(filepath.Join(parent, "p"), "nope", testData("p"))
	if !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("err = %v, want ErrUnknownKind", err)
	}
	if entries, _ := os.ReadDir(parent); len(entries) != 0 {
		t.Errorf("unknown kind left %d entries", len(entries))
	}
}

func TestGoModPath(t *testing.T) {
	tests := []struct{ in, want string }{
		{"../..", "../.."},
		{"/src/mesh", "/src/mesh"},
		{"/my src/mesh", `"/my src/mesh"`},
		{"/a//b", `"/a//b"`},
	}
	for _, tt := range tests {
		if got := GoModPath(tt.in); got != tt.want {
			t.Errorf("GoModPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseGoMod(t *testing.T) {
	mod, goVer := ParseGoMod([]byte("// comment\nmodule \"example.com/x\" // trailing\n\ngo 1.26.8\n\nrequire (\n\tfoo v1\n)\n"))
	if mod != "example.com/x" || goVer != "1.26.8" {
		t.Errorf("ParseGoMod = %q, %q", mod, goVer)
	}
	if mod, goVer := ParseGoMod([]byte("nothing here\n")); mod != "" || goVer != "" {
		t.Errorf("ParseGoMod(empty) = %q, %q", mod, goVer)
	}
}

// TestClusteredContentContract pins what the clustered starter must and must
// not contain: one bootstrap call, the declared work, and no HTTP, routes,
// delay knobs or hand-written clustering.
func TestClusteredContentContract(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cl")
	if _, err := Generate(dir, KindClustered, testData("cl")); err != nil {
		t.Fatal(err)
	}
	main := readFile(t, filepath.Join(dir, "main.go"))
	if n := strings.Count(main, "mesh.StartFromEnv()"); n != 1 {
		t.Errorf("main.go calls mesh.StartFromEnv() %d times, want 1", n)
	}
	for _, want := range []string{
		"[clustered-app] runtime bootstrap mode=%s node=%s cluster_port=%d discovery_seed=%s",
		"[clustered-app] runtime bootstrap failed reason=%v",
		"signal.NotifyContext(", "syscall.SIGTERM", "mesh.Shutdown(shutdownCtx)", "context.WithTimeout(",
	} {
		if !strings.Contains(main, want) {
			t.Errorf("main.go lacks %q", want)
		}
	}
	work := readFile(t, filepath.Join(dir, "work", "work.go"))
	for _, want := range []string{"var _ = mesh.Work(Add)", "func Add(ctx context.Context) (int, error) { return 1 + 1, nil }"} {
		if !strings.Contains(work, want) {
			t.Errorf("work/work.go lacks %q", want)
		}
	}
	readme := readFile(t, filepath.Join(dir, "README.md"))
	for _, want := range []string{
		"MESH_CLUSTER_COOKIE", "MESH_DISCOVERY_SEED", "MESH_NODE_NAME", "MESH_NODE_HOST",
		"MESH_CLUSTER_PORT", "`4370`", "MESH_CONTINUITY_ROLE", "MESH_CONTINUITY_PROMOTION_EPOCH",
		"`<hostname>@<MESH_NODE_HOST or hostname>:<port>`",
		"MESH_NODE_NAME=primary@127.0.0.1:4370", "MESH_NODE_NAME='standby@[::1]:4370'",
		"MESH_DISCOVERY_SEED=localhost", "MESH_CONTINUITY_ROLE=standby",
		"work.Add", "meshc build .", "meshc test .",
	} {
		if !strings.Contains(readme, want) {
			t.Errorf("README.md lacks %q", want)
		}
	}
	// The operator commands appear in the order an operator runs them.
	order := []string{
		"meshc cluster status primary@127.0.0.1:4370",
		"meshc cluster continuity primary@127.0.0.1:4370\n",
		"meshc cluster continuity primary@127.0.0.1:4370 startup::work.Add",
		"meshc cluster diagnostics primary@127.0.0.1:4370",
	}
	last := -1
	for _, s := range order {
		i := strings.Index(readme, s)
		if i < 0 || i < last {
			t.Errorf("README.md: %q missing or out of order", strings.TrimSpace(s))
		}
		last = i
	}
	forbidden := []string{
		"net/http", "ListenAndServe", "/health", "mesh.Clustered(", "time.Sleep",
		"MESH_STARTUP_WORK_DELAY_MS", "_DELAY", "app@127.0.0.1", "mesh.toml", "[cluster]",
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b := readFile(t, p)
		for _, f := range forbidden {
			if strings.Contains(b, f) {
				rel, _ := filepath.Rel(dir, p)
				t.Errorf("%s contains forbidden %q", rel, f)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestHelloContent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hi")
	if _, err := Generate(dir, KindHello, testData("hi")); err != nil {
		t.Fatal(err)
	}
	if main := readFile(t, filepath.Join(dir, "main.go")); !strings.Contains(main, `"Hello from Mesh!"`) {
		t.Errorf("main.go does not print Hello from Mesh!:\n%s", main)
	}
}

// TestGeneratedProjectsBuild generates every embedded kind against this
// repository and runs go build, go vet and gofmt in it. It is the check that
// each template's go.sum is complete: the go command runs with
// -mod=readonly, so a stale go.sum fails here with "missing go.sum entry".
// After a go.mod change, regenerate the go.sum files with
//
//	go test ./internal/scaffold/ -run TestGeneratedProjectsBuild -args -update-gosum
func TestGeneratedProjectsBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds generated projects; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not on PATH")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	_, goVersion := ParseGoMod([]byte(readFile(t, filepath.Join(root, "go.mod"))))
	for _, kind := range Kinds() {
		t.Run(string(kind), func(t *testing.T) {
			name := "gen-" + string(kind)
			dir := filepath.Join(t.TempDir(), name)
			data := Data{Name: name, Module: name, MeshModule: MeshModule, MeshReplace: GoModPath(root), GoVersion: goVersion}
			if _, err := Generate(dir, kind, data); err != nil {
				t.Fatal(err)
			}
			if *updateGoSum {
				refreshGoSum(t, goBin, dir, kind)
			}
			for _, args := range [][]string{{"build", "./..."}, {"vet", "./..."}} {
				run(t, dir, goBin, append(args[:1:1], append([]string{"-mod=readonly"}, args[1:]...)...)...)
			}
			if out := run(t, dir, filepath.Join(filepath.Dir(goBin), "gofmt"), "-l", "."); strings.TrimSpace(out) != "" {
				t.Errorf("generated files are not gofmt-formatted:\n%s", out)
			}
		})
	}
}

// refreshGoSum runs go mod tidy in the generated project and copies its go.sum
// back into the template, and tidy's block of indirect requirements into
// go.mod.tmpl (the rest of go.mod.tmpl is edited by hand: any other change
// tidy would make is reported, not copied).
func refreshGoSum(t *testing.T, goBin, dir string, kind Kind) {
	t.Helper()
	before := readFile(t, filepath.Join(dir, "go.mod"))
	if err := os.Remove(filepath.Join(dir, "go.sum")); err != nil {
		t.Fatal(err)
	}
	run(t, dir, goBin, "mod", "tidy")
	if after := readFile(t, filepath.Join(dir, "go.mod")); after != before {
		tmplPath := filepath.Join("templates", string(kind), "go.mod.tmpl")
		tmpl := readFile(t, tmplPath)
		newBlock, okNew := indirectBlock(after)
		oldBlock, okOld := indirectBlock(tmpl)
		switch {
		case okNew && okOld:
			tmpl = strings.Replace(tmpl, oldBlock, newBlock, 1)
		case okNew:
			tmpl = strings.Replace(tmpl, "\nreplace ", newBlock+"\nreplace ", 1)
		}
		if err := os.WriteFile(tmplPath, []byte(tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote the indirect requirements of %s; check the rest of what go mod tidy would write:\n%s", tmplPath, after)
		if newBlock, ok := indirectBlock(after); ok {
			before = strings.Replace(before, oldBlock, newBlock, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(before), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := os.ReadFile(filepath.Join(dir, "go.sum"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join("templates", string(kind), "go.sum")
	if err := os.WriteFile(dst, sum, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", dst, len(sum))
}

// indirectBlock returns the "require (...)" block of gomod whose every
// requirement is marked // indirect, with its trailing newline.
func indirectBlock(gomod string) (string, bool) {
	for rest := gomod; ; {
		i := strings.Index(rest, "require (\n")
		if i < 0 {
			return "", false
		}
		end := strings.Index(rest[i:], "\n)\n")
		if end < 0 {
			return "", false
		}
		block := rest[i : i+end+3]
		lines := strings.Split(strings.TrimSpace(block), "\n")
		indirect := len(lines) > 2
		for _, l := range lines[1 : len(lines)-1] {
			if !strings.HasSuffix(strings.TrimSpace(l), "// indirect") {
				indirect = false
			}
		}
		if indirect {
			return block, true
		}
		rest = rest[i+end+3:]
	}
}

func run(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
