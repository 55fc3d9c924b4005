package mesh

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// nodeMethods is the public method set of *mesh.Node. Node is an alias of
// the engine's node type, so an exported method added to cluster.Node would
// become public API without any change to this package; this list makes
// that a deliberate change.
var nodeMethods = []string{
	"Authority", "Diagnostics", "For", "Health", "LivenessHandler", "Members", "Mode", "Name",
	"OnMembership", "Peers", "ReadinessHandler", "Record", "Records", "Shutdown", "Submit",
}

func TestNodeMethodSetIsThePublicOne(t *testing.T) {
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
	node, ok := typeCheck(t, fset, files).Scope().Lookup("Node").(*types.TypeName)
	if !ok {
		t.Fatal("package mesh has no type Node")
	}
	if got := exportedMethods(node.Type()); !slices.Equal(got, nodeMethods) {
		t.Errorf("exported methods of *mesh.Node = %q, want %q", got, nodeMethods)
	}
}

// exportedMethods returns, sorted, the names of the exported methods of *t.
func exportedMethods(t types.Type) []string {
	ms := types.NewMethodSet(types.NewPointer(t))
	var out []string
	for i := range ms.Len() {
		if m := ms.At(i).Obj(); m.Exported() {
			out = append(out, m.Name())
		}
	}
	slices.Sort(out)
	return out
}
