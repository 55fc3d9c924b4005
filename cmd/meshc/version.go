package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

const versionUsage = `Usage: meshc version

Prints the meshc version and the Go toolchain it was built with.
`

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, err := parseArgs(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, versionUsage)
		return flag.ErrHelp
	}
	if err != nil {
		return fmt.Errorf("%v; run 'meshc version --help'", err)
	}
	if len(pos) > 0 {
		return fmt.Errorf("meshc version takes no arguments, got %d", len(pos))
	}
	fmt.Fprintf(stdout, "meshc %s\n", meshcVersion())
	fmt.Fprintf(stdout, "%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// meshcVersion is the module version stamped into the binary by the go
// command (set by go install meshgo.dev/mesh/cmd/meshc@<version>), or "devel"
// for a build from a source tree.
func meshcVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
