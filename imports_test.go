package mesh

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestInternalPackagesDoNotImportRoot: the engine and every other package
// under internal/ sit below package mesh. An internal package that imported
// the root (in its code or its tests) would make the public package a
// dependency of its own implementation, and an import cycle the moment the
// root forwards to it.
func TestInternalPackagesDoNotImportRoot(t *testing.T) {
	const root = "meshgo.dev/mesh"
	out, err := exec.Command("go", "list",
		"-f", "{{.ImportPath}}\t{{join .Imports \" \"}} {{join .TestImports \" \"}} {{join .XTestImports \" \"}}",
		"./internal/...").Output()
	if err != nil {
		t.Fatalf("go list ./internal/...: %v", err)
	}
	offenders, listed := importersOf(out, root)
	if listed == 0 {
		t.Fatal("go list listed no internal package")
	}
	if len(offenders) > 0 {
		t.Errorf("internal packages importing %s: %s", root, strings.Join(offenders, ", "))
	}
}

// importersOf returns, sorted, the packages of a `go list` listing (lines
// "<path>\t<imports separated by spaces>") that import target, and how many
// packages were listed.
func importersOf(listing []byte, target string) (offenders []string, listed int) {
	for sc := bufio.NewScanner(bytes.NewReader(listing)); sc.Scan(); {
		path, imports, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		listed++
		if slices.Contains(strings.Fields(imports), target) {
			offenders = append(offenders, path)
		}
	}
	slices.Sort(offenders)
	return offenders, listed
}

// TestImportersOfFindsAnImporter proves the check above can fail: the root
// named among a package's imports is reported, a path that merely starts
// with the root's is not.
func TestImportersOfFindsAnImporter(t *testing.T) {
	listing := []byte("meshgo.dev/mesh/internal/b\tmeshgo.dev/mesh/internal/wire fmt\n" +
		"meshgo.dev/mesh/internal/a\tfmt meshgo.dev/mesh \n" +
		"meshgo.dev/mesh/internal/c\t meshgo.dev/mesh/internal/cluster\n")
	got, listed := importersOf(listing, "meshgo.dev/mesh")
	if want := []string{"meshgo.dev/mesh/internal/a"}; !slices.Equal(got, want) || listed != 3 {
		t.Errorf("importersOf = %q, %d packages; want %q, 3", got, listed, want)
	}
}

// TestNoEtcdTagLeavesEtcdOut: a program built with -tags mesh_noetcd links
// no etcd or gRPC package, and one built without the tag does (so the check
// can fail).
func TestNoEtcdTagLeavesEtcdOut(t *testing.T) {
	deps := func(tags ...string) []string {
		args := append([]string{"list", "-deps"}, tags...)
		out, err := exec.Command("go", append(args, ".")...).Output()
		if err != nil {
			t.Fatalf("go %s: %v", strings.Join(args, " "), err)
		}
		var hits []string
		for _, p := range strings.Fields(string(out)) {
			if strings.HasPrefix(p, "go.etcd.io/") || strings.HasPrefix(p, "google.golang.org/grpc") {
				hits = append(hits, p)
			}
		}
		return hits
	}
	if hits := deps("-tags", "mesh_noetcd"); len(hits) > 0 {
		t.Errorf("with -tags mesh_noetcd the package still links %s", strings.Join(hits, ", "))
	}
	if hits := deps(); len(hits) == 0 {
		t.Error("without the tag no etcd package is linked; the check above proves nothing")
	}
}
