package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"

	"meshgo.dev/mesh/internal/scaffold"
)

const buildUsage = `Usage: meshc build [dir] [--output path]

Builds the Go project in dir (default .) with go build. The binary is named
after the project (the last element of its module path) and written into dir
unless --output names another path.

Flags:
  --output PATH   where to write the binary (relative to the current directory)

Examples:
  meshc build .
  CGO_ENABLED=0 GOOS=linux meshc build .          a static Linux binary for the image
  meshc build my-app --output /tmp/bundle/my-app
`

// buildFlags returns the flag set of meshc build and the --output value.
func buildFlags() (*flag.FlagSet, *string) {
	fset := flag.NewFlagSet("build", flag.ContinueOnError)
	output := fset.String("output", "", "write the binary to `PATH`")
	return fset, output
}

func runBuild(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset, output := buildFlags()
	pos, err := parseCommand(fset, args, buildUsage, stdout)
	if err != nil {
		return err
	}
	dir, err := projectDirArg("build", pos)
	if err != nil {
		return err
	}
	proj, err := readProject(dir)
	if err != nil {
		return err
	}
	out := *output
	if out == "" {
		out = filepath.Join(dir, proj.binary)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	goBin, err := goTool()
	if err != nil {
		return err
	}
	// go build's output is diagnostics: it goes to stderr, and stdout keeps
	// only the result line.
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", absOut, ".")
	cmd.Dir = dir
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build in %s failed: %w; the compiler's messages are above, fix them and rerun meshc build", dir, err)
	}
	fmt.Fprintf(stdout, "Built %s\n", out)
	return nil
}

// project is the part of a Go project meshc build and test need.
type project struct {
	module string
	binary string // default binary file name
}

// projectDirArg returns the optional directory argument of build and test.
func projectDirArg(cmd string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return ".", nil
	case 1:
		return pos[0], nil
	default:
		return "", fmt.Errorf("meshc %s takes at most one project directory, got %d; run 'meshc %s --help'", cmd, len(pos), cmd)
	}
}

// readProject reads dir/go.mod.
func readProject(dir string) (project, error) {
	st, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return project{}, fmt.Errorf("project directory %s does not exist; pass the directory meshc init created, or run meshc init first", dir)
		}
		return project{}, err
	}
	if !st.IsDir() {
		return project{}, fmt.Errorf("%s is not a directory", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if errors.Is(err, fs.ErrNotExist) {
		return project{}, fmt.Errorf("no go.mod in %s: expected a Go module such as one created by meshc init; pass the project's directory (the one holding go.mod)", dir)
	}
	if err != nil {
		return project{}, err
	}
	module, _ := scaffold.ParseGoMod(b)
	if module == "" {
		return project{}, fmt.Errorf("%s has no module directive", filepath.Join(dir, "go.mod"))
	}
	binary := path.Base(module)
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	return project{module: module, binary: binary}, nil
}

// goTool finds the go command.
func goTool() (string, error) {
	p, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("the go command is not on PATH; meshc build and meshc test run the Go toolchain (https://go.dev/dl/)")
	}
	return p, nil
}
