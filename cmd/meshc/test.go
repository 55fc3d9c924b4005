package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"slices"
)

const testUsage = `Usage: meshc test [dir] [-- go test flags]

Runs go test ./... in the project dir (default .), streaming its output.
Arguments after -- are passed to go test.

Examples:
  meshc test .
  meshc test my-app -- -run TestAdd -v
`

func runTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var goArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, goArgs = args[:i], args[i+1:]
	}
	fset := flag.NewFlagSet("test", flag.ContinueOnError)
	pos, err := parseCommand(fset, args, testUsage, stdout)
	if err != nil {
		return err
	}
	dir, err := projectDirArg("test", pos)
	if err != nil {
		return err
	}
	if _, err := readProject(dir); err != nil {
		return err
	}
	goBin, err := goTool()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, goBin, append(append([]string{"test"}, goArgs...), "./...")...)
	cmd.Dir = dir
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("tests failed in %s: %w; the failures are above, rerun one with meshc test %s -- -run <TestName> -v", dir, err, dir)
	}
	return nil
}
