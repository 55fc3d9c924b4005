// Command meshc is the Mesh toolchain: project scaffolding, build and test,
// migrations, and the operator view of a running cluster.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one meshc subcommand. run returns an error; main prints it as
// "error: <message>" and exits with the code exitCode gives it (see
// exitcode.go). flag.ErrHelp means help was printed.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"init", "create a project: hello, --clustered, or --template todo-api [--db sqlite|postgres]", runInit},
		{"build", "build a project into a binary named after it", runBuild},
		{"test", "run a project's tests", runTest},
		{"migrate", "apply, roll back or list a project's SQL migrations", runMigrate},
		{"cluster", "inspect a running node: status, continuity, diagnostics", runCluster},
		{"version", "print the meshc version", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		os.Exit(exitCode(err))
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return usageError(errors.New("a command is required"))
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	return usageError(fmt.Errorf("unknown command %q; run 'meshc --help' for the list", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: meshc <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'meshc <command> --help' for the flags of one command.")
	fmt.Fprintln(w)
	writeExitCodes(w)
}
