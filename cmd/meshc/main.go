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
//
// The table is also what `meshc completion` generates its scripts from:
// flags returns the command's own flag set (nil when it has none), words are
// the fixed words its positional arguments may be, dirs says a positional
// argument may be a directory, and subcommands are the commands below it.
type command struct {
	name        string
	summary     string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	flags       func() *flag.FlagSet
	words       []string
	dirs        bool
	subcommands []command
}

func commands() []command {
	return []command{
		{name: "init", summary: "create a project: hello, --clustered, or --template todo-api [--db sqlite|postgres]", run: runInit,
			flags: func() *flag.FlagSet { fs, _ := initFlags(); return fs }},
		{name: "build", summary: "build a project into a binary named after it", run: runBuild,
			flags: func() *flag.FlagSet { fs, _ := buildFlags(); return fs }, dirs: true},
		{name: "test", summary: "run a project's tests", run: runTest, dirs: true},
		{name: "migrate", summary: "apply, roll back or list a project's SQL migrations", run: runMigrate,
			words: migrateActions, dirs: true},
		{name: "cluster", summary: "inspect a running node: status, continuity, diagnostics", run: runCluster,
			subcommands: clusterCommands()},
		{name: "completion", summary: "print a shell completion script: bash, zsh or fish", run: runCompletion,
			words: completionShells},
		{name: "version", summary: "print the meshc version, module version and VCS revision", run: runVersion},
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
			return withNextStep(c.run(ctx, args[1:], stdout, stderr))
		}
	}
	return usageError(fmt.Errorf("unknown command %q; run 'meshc --help' for the list", args[0]))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: meshc <command> [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'meshc <command> --help' for the flags of one command.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Examples:")
	fmt.Fprintln(w, "  meshc init --clustered my-app")
	fmt.Fprintln(w, "  meshc cluster status primary@127.0.0.1:4370 standby@[::1]:4370")
	fmt.Fprintln(w, "  source <(meshc completion bash)")
	fmt.Fprintln(w)
	writeExitCodes(w)
}
