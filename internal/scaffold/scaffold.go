// Package scaffold owns the project templates behind meshc init and writes
// them to disk.
//
// Templates are embedded from templates/<kind>/. A file whose name ends in
// .tmpl is rendered with text/template and written without the suffix; every
// other file is copied byte for byte. Go sources are always stored as .go.tmpl
// so that the repository's own go build ./... never compiles a template.
//
// Dotfiles are stored without their dot, so that a template's .gitignore never
// applies to the template folder itself: the names gitignore and dockerignore
// are written as .gitignore and .dockerignore, and a leading "dot-" is written
// as "." (dot-env.example.tmpl becomes .env.example). Files ending in .sh are
// written executable (0755); a file named .env (local secrets, such as the
// random cluster cookie a template writes there) is private to its owner
// (0600); every other file is 0644.
//
// The package imports only the standard library and internal/cookie.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"meshgo.dev/mesh/internal/cookie"
)

//go:embed all:templates
var templates embed.FS

// Kind names one project template.
type Kind string

// The template kinds meshc init knows. A kind is usable only when its folder
// exists under templates/; Kinds lists those.
const (
	KindHello        Kind = "hello"         // meshc init <name>
	KindClustered    Kind = "clustered"     // meshc init --clustered <name>
	KindTodoSQLite   Kind = "todo-sqlite"   // meshc init --template todo-api <name>
	KindTodoPostgres Kind = "todo-postgres" // meshc init --template todo-api --db postgres <name>
)

// DefaultGoVersion is the go directive written when Data.GoVersion is empty.
const DefaultGoVersion = "1.26"

// MeshModule is the module path of the Mesh runtime.
const MeshModule = "meshgo.dev/mesh"

// Data is what templates are rendered with.
type Data struct {
	Name        string // project directory name
	Module      string // module path of the generated project; meshc sets it to Name
	MeshModule  string // module path of the runtime, MeshModule
	MeshReplace string // replace target for MeshModule, already in go.mod syntax (see GoModPath)
	// GoVersion is the go directive of the generated go.mod. It must be at
	// least the runtime's own go directive, or the go command refuses to build
	// ("updates to go.mod needed"); meshc copies it from the runtime's go.mod.
	// Empty means DefaultGoVersion.
	GoVersion string
	// Cookie is the cluster cookie written into the project's git-ignored
	// .env file. Empty means a fresh random one (cookie.New).
	Cookie string
}

// ErrUnknownKind is returned for a kind whose templates are not embedded.
var ErrUnknownKind = errors.New("unknown template kind")

// Kinds returns the kinds whose templates are embedded, sorted.
func Kinds() []Kind { return kinds(templates) }

func kinds(fsys fs.FS) []Kind {
	entries, err := fs.ReadDir(fsys, "templates")
	if err != nil {
		return nil
	}
	var out []Kind
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, Kind(e.Name()))
		}
	}
	slices.Sort(out)
	return out
}

// Has reports whether the templates of kind are embedded.
func Has(kind Kind) bool { return slices.Contains(Kinds(), kind) }

func has(fsys fs.FS, kind Kind) bool { return slices.Contains(kinds(fsys), kind) }

// Files returns the slash-separated paths, relative to the project directory,
// of the files Generate writes for kind, sorted.
func Files(kind Kind) ([]string, error) {
	files, err := plan(templates, kind)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.out
	}
	return out, nil
}

// Generate creates dir and writes the project of the given kind into it,
// returning the written files as sorted slash-separated relative paths.
//
// Generate refuses a dir that already exists (the error wraps fs.ErrExist).
// The files are written into a temporary sibling directory that then replaces
// dir in one rename, so on failure nothing is left behind.
func Generate(dir string, kind Kind, data Data) ([]string, error) {
	return generate(templates, dir, kind, data)
}

func generate(fsys fs.FS, dir string, kind Kind, data Data) ([]string, error) {
	files, err := plan(fsys, kind)
	if err != nil {
		return nil, err
	}
	if data.MeshModule == "" {
		data.MeshModule = MeshModule
	}
	if data.GoVersion == "" {
		data.GoVersion = DefaultGoVersion
	}
	if data.Module == "" {
		data.Module = data.Name
	}
	if data.Cookie == "" {
		data.Cookie = cookie.New()
	}
	// Render everything before touching the disk: a template error then
	// cannot leave anything behind.
	rendered := make([][]byte, len(files))
	for i, f := range files {
		b, err := f.render(fsys, data)
		if err != nil {
			return nil, err
		}
		rendered[i] = b
	}

	dir = filepath.Clean(dir)
	// Claim dir first: Mkdir fails when it exists, atomically. The finished
	// tree is renamed over this empty directory, which rename(2) allows.
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		os.Remove(dir)
		return nil, err
	}
	fail := func(err error) ([]string, error) {
		os.RemoveAll(tmp)
		os.Remove(dir)
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fail(err)
	}
	out := make([]string, len(files))
	for i, f := range files {
		target := filepath.Join(tmp, filepath.FromSlash(f.out))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return fail(err)
		}
		mode := fs.FileMode(0o644)
		switch {
		case strings.HasSuffix(f.out, ".sh"):
			mode = 0o755
		case path.Base(f.out) == ".env":
			mode = 0o600
		}
		if err := os.WriteFile(target, rendered[i], mode); err != nil {
			return fail(err)
		}
		// WriteFile's mode is filtered by the umask; the mode is part of
		// the contract (a private .env), so set it exactly.
		if err := os.Chmod(target, mode); err != nil {
			return fail(err)
		}
		out[i] = f.out
	}
	if err := os.Rename(tmp, dir); err != nil {
		// Some systems refuse to rename over an empty directory; release
		// the claim and retry once.
		if rmErr := os.Remove(dir); rmErr != nil || os.Rename(tmp, dir) != nil {
			return fail(err)
		}
	}
	return out, nil
}

// file is one template file and where it goes.
type file struct {
	src string // path inside the embedded FS
	out string // slash-separated output path relative to the project
}

func (f file) render(fsys fs.FS, data Data) ([]byte, error) {
	b, err := fs.ReadFile(fsys, f.src)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(f.src, ".tmpl") {
		return b, nil
	}
	t, err := template.New(f.src).Option("missingkey=error").Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse template %s: %w", f.src, err)
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render template %s: %w", f.src, err)
	}
	return buf.Bytes(), nil
}

// plan lists the files of kind with their output paths, sorted by output path.
func plan(fsys fs.FS, kind Kind) ([]file, error) {
	if !has(fsys, kind) {
		return nil, fmt.Errorf("%w %q; this build has: %s", ErrUnknownKind, kind, kindList(fsys))
	}
	root := "templates/" + string(kind)
	var files []file
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel := strings.TrimPrefix(p, root+"/")
		files = append(files, file{src: p, out: outputPath(rel)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.out, b.out) })
	for i := 1; i < len(files); i++ {
		if files[i].out == files[i-1].out {
			return nil, fmt.Errorf("template %s: %s and %s both write %s", kind, files[i-1].src, files[i].src, files[i].out)
		}
	}
	return files, nil
}

// outputPath maps a template-relative path to the path written in the
// project: the .tmpl suffix is dropped and dotfile names are restored.
func outputPath(rel string) string {
	rel = strings.TrimSuffix(rel, ".tmpl")
	dir, name := path.Split(rel)
	switch {
	case name == "gitignore" || name == "dockerignore":
		name = "." + name
	case strings.HasPrefix(name, "dot-"):
		name = "." + strings.TrimPrefix(name, "dot-")
	}
	return dir + name
}

func kindList(fsys fs.FS) string {
	var names []string
	for _, k := range kinds(fsys) {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}

// GoModPath formats a filesystem path for a go.mod replace directive, quoting
// it when it contains characters the go.mod syntax would otherwise split on.
func GoModPath(p string) string {
	if p == "" || strings.ContainsAny(p, " \t\r\n\"'`") || strings.Contains(p, "//") || strings.Contains(p, "/*") {
		return fmt.Sprintf("%q", p)
	}
	return p
}
