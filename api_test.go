package mesh

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestExportedAPINamesNoInternalType walks every exported name of package
// mesh — function and method signatures, exported struct fields, variables,
// constants — and everything reachable from them, and fails when it reaches a
// type from an internal package that package mesh does not alias: a user
// outside the module could receive a value of that type but never name it.
func TestExportedAPINamesNoInternalType(t *testing.T) {
	fset := token.NewFileSet()
	var files []*ast.File
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	pkg := typeCheck(t, fset, files)
	if leaks := internalLeaks(pkg); len(leaks) > 0 {
		t.Errorf("exported API of package mesh uses internal types without an alias in package mesh "+
			"(add `type X = internal.X` to aliases.go):\n%s", strings.Join(leaks, "\n"))
	}
}

// TestInternalLeaksFindsALeak proves the walk above can fail: a package
// returning an internal type is reported until it aliases that type.
func TestInternalLeaksFindsALeak(t *testing.T) {
	const leaky = `package mesh
import "meshgo.dev/mesh/internal/continuity"
type Holder struct{ Records map[string][]*continuity.Record }
func (Holder) Phase() continuity.Phase { return "" }
`
	tests := []struct {
		name, aliases string
		want          []string
	}{
		{"no alias", "", []string{
			"mesh.Holder.Phase: meshgo.dev/mesh/internal/continuity.Phase",
			"mesh.Holder.Records: meshgo.dev/mesh/internal/continuity.Record",
		}},
		{"one alias", "type Record = continuity.Record", []string{
			"mesh.Holder.Phase: meshgo.dev/mesh/internal/continuity.Phase",
		}},
		{"both aliased", "type Record = continuity.Record\ntype Phase = continuity.Phase", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "leaky.go", leaky+tt.aliases+"\n", 0)
			if err != nil {
				t.Fatal(err)
			}
			leaks := internalLeaks(typeCheck(t, fset, []*ast.File{f}))
			// A field of an aliased Record may reach further internal
			// types (Record.Phase); only the first report per name counts.
			var got []string
			for _, l := range leaks {
				if strings.HasPrefix(l, "mesh.Holder.") {
					got = append(got, l)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("leaks %q, want %q", got, tt.want)
			}
		})
	}
}

// typeCheck type-checks files as package meshgo.dev/mesh, importing its
// dependencies from the export data the go command builds for them.
func typeCheck(t *testing.T, fset *token.FileSet, files []*ast.File) *types.Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for sc := bufio.NewScanner(bytes.NewReader(out)); sc.Scan(); {
		if path, file, ok := strings.Cut(sc.Text(), "\t"); ok && file != "" {
			exports[path] = file
		}
	}
	lookup := func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", lookup)}
	pkg, err := conf.Check("meshgo.dev/mesh", fset, files, nil)
	if err != nil {
		t.Fatalf("type-check package mesh: %v", err)
	}
	return pkg
}

// internalLeaks returns, sorted, one line "<where>: <type>" for each internal
// type the exported API of pkg reaches that pkg has no exported alias for.
func internalLeaks(pkg *types.Package) []string {
	aliased := map[*types.TypeName]bool{}
	scope := pkg.Scope()
	for _, name := range scope.Names() {
		if tn, ok := scope.Lookup(name).(*types.TypeName); ok && tn.Exported() && tn.IsAlias() {
			if named, ok := types.Unalias(tn.Type()).(*types.Named); ok {
				aliased[named.Origin().Obj()] = true
			}
		}
	}
	w := &apiWalker{aliased: aliased, seen: map[types.Type]bool{}, leaks: map[string]bool{}}
	for _, name := range scope.Names() {
		obj := scope.Lookup(name)
		if !obj.Exported() {
			continue
		}
		where := "mesh." + name
		if tn, ok := obj.(*types.TypeName); ok && !tn.IsAlias() {
			w.members(tn.Type(), where)
			continue
		}
		w.walk(obj.Type(), where)
	}
	leaks := make([]string, 0, len(w.leaks))
	for l := range w.leaks {
		leaks = append(leaks, l)
	}
	slices.Sort(leaks)
	return leaks
}

type apiWalker struct {
	aliased map[*types.TypeName]bool
	seen    map[types.Type]bool
	leaks   map[string]bool
}

// walk visits t as it appears at where.
func (w *apiWalker) walk(t types.Type, where string) {
	switch t := t.(type) {
	case *types.Alias:
		w.walk(types.Unalias(t), where)
	case *types.Named:
		obj := t.Origin().Obj()
		if obj.Pkg() != nil && isInternal(obj.Pkg().Path()) {
			if !w.aliased[obj] {
				w.leaks[where+": "+obj.Pkg().Path()+"."+obj.Name()] = true
			}
			w.members(t, obj.Pkg().Name()+"."+obj.Name())
		}
		for i := range t.TypeArgs().Len() {
			w.walk(t.TypeArgs().At(i), where)
		}
	case *types.Pointer:
		w.walk(t.Elem(), where)
	case *types.Slice:
		w.walk(t.Elem(), where)
	case *types.Array:
		w.walk(t.Elem(), where)
	case *types.Chan:
		w.walk(t.Elem(), where)
	case *types.Map:
		w.walk(t.Key(), where)
		w.walk(t.Elem(), where)
	case *types.Signature:
		for _, tuple := range []*types.Tuple{t.Params(), t.Results()} {
			for i := range tuple.Len() {
				w.walk(tuple.At(i).Type(), where)
			}
		}
	case *types.Struct:
		for i := range t.NumFields() {
			if f := t.Field(i); f.Exported() {
				w.walk(f.Type(), where+"."+f.Name())
			}
		}
	case *types.Interface:
		for i := range t.NumMethods() {
			if m := t.Method(i); m.Exported() {
				w.walk(m.Type(), where+"."+m.Name())
			}
		}
	}
}

// members visits the exported fields and methods of a named type once.
func (w *apiWalker) members(t types.Type, where string) {
	if w.seen[t] {
		return
	}
	w.seen[t] = true
	w.walk(t.Underlying(), where)
	for _, recv := range []types.Type{t, types.NewPointer(t)} {
		ms := types.NewMethodSet(recv)
		for i := range ms.Len() {
			if m := ms.At(i).Obj(); m.Exported() {
				w.walk(m.Type(), where+"."+m.Name())
			}
		}
	}
}

func isInternal(path string) bool {
	return strings.Contains(path+"/", "/internal/")
}
