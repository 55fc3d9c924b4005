package main

import (
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"meshgo.dev/mesh/internal/scaffold"
)

// vendorDir is where meshc init --vendor puts the copy of the runtime, as
// written in the project's replace directive.
const vendorDir = "./third_party/mesh"

// vendorRoots are the runtime packages a project may import, relative to the
// module root: package mesh and the test kit. Their imports inside the module
// are followed, so the copy holds exactly what these need.
var vendorRoots = []string{".", "meshtest"}

// vendorRuntime copies the runtime module at src into dst: its go.mod and
// LICENSE files, and the non-test Go files of every package the vendorRoots
// reach (together with meshtest's subpackages, and what they import). A package that embeds files
// is refused rather than copied without them.
func vendorRuntime(src, dst string) error {
	roots := slices.Clone(vendorRoots)
	subs, err := os.ReadDir(filepath.Join(src, "meshtest"))
	if err != nil {
		return fmt.Errorf("package %s/meshtest: %w", scaffold.MeshModule, err)
	}
	for _, e := range subs {
		// meshtest/internal is no package a project imports: what is
		// under it is copied when a kit's imports reach it.
		if e.IsDir() && e.Name() != "testdata" && e.Name() != "internal" {
			roots = append(roots, "meshtest/"+e.Name())
		}
	}
	pkgs := map[string][]string{} // package dir -> its Go files
	queue := roots
	for len(queue) > 0 {
		rel := queue[0]
		queue = queue[1:]
		if _, done := pkgs[rel]; done {
			continue
		}
		files, imports, err := packageFiles(filepath.Join(src, filepath.FromSlash(rel)))
		if err != nil {
			return fmt.Errorf("package %s: %w", path.Join(scaffold.MeshModule, rel), err)
		}
		pkgs[rel] = files
		for _, imp := range imports {
			if sub, ok := strings.CutPrefix(imp, scaffold.MeshModule+"/"); ok {
				queue = append(queue, sub)
			}
		}
	}
	copyOne := func(rel string) error {
		b, err := os.ReadFile(filepath.Join(src, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		out := filepath.Join(dst, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	}
	top := []string{"go.mod"}
	if lic, _ := filepath.Glob(filepath.Join(src, "LICENSE*")); len(lic) > 0 {
		for _, l := range lic {
			top = append(top, filepath.Base(l))
		}
	}
	for _, f := range top {
		if err := copyOne(f); err != nil {
			return err
		}
	}
	dirs := make([]string, 0, len(pkgs))
	for d := range pkgs {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		for _, f := range pkgs[d] {
			if err := copyOne(path.Join(d, f)); err != nil {
				return err
			}
		}
	}
	note := "# Vendored Mesh runtime\n\n" +
		"A copy of the packages of " + scaffold.MeshModule + " this project can import, made by\n" +
		"`meshc init --vendor` (meshc " + shortVersion() + "). The project's go.mod points at it with\n" +
		"`replace " + scaffold.MeshModule + " => " + vendorDir + "`. Do not edit it here; to update it,\n" +
		"run `meshc init --vendor` with a newer Mesh checkout in a scratch directory and\n" +
		"replace this directory with the new project's third_party/mesh.\n"
	return os.WriteFile(filepath.Join(dst, "VENDORED.md"), []byte(note), 0o644)
}

// packageFiles lists the non-test Go files of the package in dir and the
// imports of all of them, whatever their build constraints.
func packageFiles(dir string) (files, imports []string, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no such package directory %s", dir)
		}
		return nil, nil, err
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return nil, nil, err
		}
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if strings.HasPrefix(c.Text, "//go:embed") {
					return nil, nil, fmt.Errorf("%s embeds files, which meshc init --vendor does not copy", name)
				}
			}
		}
		for _, imp := range f.Imports {
			p, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				return nil, nil, err
			}
			imports = append(imports, p)
		}
		files = append(files, name)
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("no Go files in %s", dir)
	}
	return files, imports, nil
}
