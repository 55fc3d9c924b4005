package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"meshgo.dev/mesh/internal/scaffold"
)

// sourceEnv names the environment variable that points meshc at the runtime
// source tree.
const sourceEnv = "MESH_SOURCE_DIR"

// meshSource is a located runtime source tree.
type meshSource struct {
	Dir       string // absolute, symlinks resolved
	GoVersion string // go directive of its go.mod
	From      string // where it was found, for error messages
}

// findMeshSource locates the Mesh runtime source tree that generated projects
// point their replace directive at. Generated projects build against local
// source, so no published module is needed. The candidates, in order:
//
//  1. flagDir, from meshc init --mesh-source DIR;
//  2. the MESH_SOURCE_DIR environment variable;
//  3. the tree this meshc binary was compiled from: the directory of this
//     source file as recorded by the compiler (runtime.Caller), walked up to
//     the go.mod declaring meshgo.dev/mesh. Binaries built with -trimpath, or
//     moved to a machine without that tree, skip this step;
//  4. the directories above the meshc executable, for a meshc built into the
//     tree (for example ./bin/meshc).
//
// An explicit candidate (1 or 2) must itself hold the go.mod of
// meshgo.dev/mesh, or findMeshSource fails naming the candidate. When no
// candidate matches, the error tells the user to set MESH_SOURCE_DIR.
func findMeshSource(flagDir string, getenv func(string) string) (meshSource, error) {
	if flagDir != "" {
		return checkSourceDir(flagDir, "--mesh-source "+flagDir)
	}
	if env := getenv(sourceEnv); env != "" {
		return checkSourceDir(env, sourceEnv+"="+env)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		if src, ok := walkUpToSource(filepath.Dir(file)); ok {
			src.From = "the source tree meshc was built from"
			return src, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			if src, ok := walkUpToSource(filepath.Dir(exe)); ok {
				src.From = "the directories above the meshc executable"
				return src, nil
			}
		}
	}
	return meshSource{}, fmt.Errorf("cannot find the Mesh runtime source (a directory whose go.mod declares module %s); "+
		"set %s to that directory or pass --mesh-source DIR", scaffold.MeshModule, sourceEnv)
}

// checkSourceDir accepts dir when its go.mod declares the runtime module.
func checkSourceDir(dir, from string) (meshSource, error) {
	src, err := readSource(dir)
	if err != nil {
		return meshSource{}, fmt.Errorf("%s is not the Mesh runtime source: %w; set %s to the directory holding the go.mod of %s",
			from, err, sourceEnv, scaffold.MeshModule)
	}
	src.From = from
	return src, nil
}

// walkUpToSource returns the first directory from dir upwards that is the
// runtime source.
func walkUpToSource(dir string) (meshSource, bool) {
	for {
		if src, err := readSource(dir); err == nil {
			return src, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return meshSource{}, false
		}
		dir = parent
	}
}

var errNotRuntime = errors.New("go.mod does not declare module " + scaffold.MeshModule)

func readSource(dir string) (meshSource, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return meshSource{}, err
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return meshSource{}, errors.New("no go.mod there")
		}
		return meshSource{}, err
	}
	module, goVersion := scaffold.ParseGoMod(b)
	if module != scaffold.MeshModule {
		return meshSource{}, errNotRuntime
	}
	return meshSource{Dir: abs, GoVersion: goVersion}, nil
}

// replaceTarget is the replace path written into the go.mod of a project
// generated at projectDir: relative (for example ../.. for
// examples/<name>) when the project lies inside the source tree, so the
// committed examples stay valid on every checkout; absolute otherwise.
func replaceTarget(projectDir, sourceDir string) (string, error) {
	abs, err := filepath.Abs(projectDir)
	if err != nil {
		return "", err
	}
	// The project does not exist yet; resolve symlinks in its parent so the
	// comparison with the (resolved) source directory is like for like.
	if parent, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(parent, filepath.Base(abs))
	}
	rel, err := filepath.Rel(sourceDir, abs)
	if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		back, err := filepath.Rel(abs, sourceDir)
		if err == nil {
			return filepath.ToSlash(back), nil
		}
	}
	return sourceDir, nil
}
