// Command docsgen regenerates the parts of the documentation site that come
// from the product itself, so that the pages cannot drift from what Mesh
// prints:
//
//	docsgen capture [--check]   CLI output of a real local cluster -> website/captured/*.txt
//	docsgen tooling [--check]   meshc help text -> website/captured/tooling-commands.md
//	docsgen rails [--check]     proof rails' --help and phases -> website/captured/rail-*.txt
//
// capture and tooling build meshc from the checkout first. With --check nothing is written:
// the output is regenerated into a temporary directory and compared with the
// committed files, and any difference is reported and makes docsgen exit 1.
//
// Run it from anywhere inside the repository (website/scripts/*.sh do that).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "docsgen: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: docsgen capture|tooling|rails [--check] [--keep]")
	}
	fs := flag.NewFlagSet("docsgen "+args[0], flag.ContinueOnError)
	check := fs.Bool("check", false, "compare with the committed files instead of writing them")
	keep := fs.Bool("keep", false, "keep the temporary work directory (for debugging)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "mesh-docsgen-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintf(stdout, "work directory: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	var files map[string][]byte // name relative to website/captured -> content
	switch args[0] {
	case "capture", "tooling":
		meshc, err := buildMeshc(ctx, root, work)
		if err != nil {
			return err
		}
		if args[0] == "capture" {
			files, err = capture(ctx, root, work, meshc)
		} else {
			files, err = tooling(ctx, work, meshc)
		}
		if err != nil {
			return err
		}
	case "rails":
		files, err = rails(ctx, root)
	default:
		return fmt.Errorf("unknown mode %q; use capture, tooling or rails", args[0])
	}
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "website", "captured")
	if *check {
		return compare(stdout, dir, files, args[0])
	}
	return write(stdout, dir, files)
}

// repoRoot is the directory of the meshgo.dev/mesh go.mod.
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run docsgen inside the Mesh repository")
	}
	b, err := os.ReadFile(gomod)
	if err != nil {
		return "", err
	}
	if !bytes.Contains(b, []byte("module meshgo.dev/mesh\n")) {
		return "", fmt.Errorf("%s is not the meshgo.dev/mesh module", gomod)
	}
	return filepath.Dir(gomod), nil
}

func buildMeshc(ctx context.Context, root, work string) (string, error) {
	bin := filepath.Join(work, "bin", "meshc")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/meshc")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/meshc: %w\n%s", err, out)
	}
	return bin, nil
}

// write replaces the generated files of one mode. Files of the same mode that
// are no longer generated are removed.
func write(stdout io.Writer, dir string, files map[string][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, name := range sortedKeys(files) {
		path := filepath.Join(dir, name)
		old, err := os.ReadFile(path)
		if err == nil && bytes.Equal(old, files[name]) {
			fmt.Fprintf(stdout, "unchanged %s\n", name)
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote     %s\n", name)
	}
	return nil
}

// compare reports every difference between files and the committed ones.
func compare(stdout io.Writer, dir string, files map[string][]byte, mode string) error {
	var drift []string
	for _, name := range sortedKeys(files) {
		old, err := os.ReadFile(filepath.Join(dir, name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			drift = append(drift, fmt.Sprintf("%s: not committed; the product now prints:\n%s", name, indent(files[name])))
		case err != nil:
			return err
		case !bytes.Equal(old, files[name]):
			drift = append(drift, fmt.Sprintf("%s differs from what the product prints:\n%s", name, diffLines(old, files[name])))
		}
	}
	if len(drift) > 0 {
		return fmt.Errorf("the pages drifted from the product (%d file(s)); rerun website/scripts/%s to refresh them:\n\n%s",
			len(drift), scriptFor(mode), strings.Join(drift, "\n"))
	}
	fmt.Fprintf(stdout, "%d generated file(s) match the product\n", len(files))
	return nil
}

func scriptFor(mode string) string {
	switch mode {
	case "tooling":
		return "gen-tooling.sh"
	case "rails":
		return "gen-rails.sh"
	}
	return "capture-cli-output.sh"
}

// diffLines is a small line diff: lines only in the committed file are
// prefixed "-", lines only in the new output "+". It is enough to see what
// changed in a few dozen lines of CLI output.
func diffLines(old, new []byte) string {
	a := strings.Split(string(old), "\n")
	b := strings.Split(string(new), "\n")
	// Longest common subsequence over lines.
	lcs := make([][]int, len(a)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out strings.Builder
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&out, "    +%s\n", b[j])
			j++
		default:
			fmt.Fprintf(&out, "    -%s\n", a[i])
			i++
		}
	}
	return out.String()
}

func indent(b []byte) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(string(b), "\n"), "\n", "\n    ") + "\n"
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
