package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"meshgo.dev/mesh/internal/scaffold"
)

const initUsage = `Usage:
  meshc init <name>                                       a hello-world project
  meshc init --clustered <name>                           a clustered application
  meshc init --template todo-api [--db sqlite|postgres] <name>
                                                          a Todo HTTP API (SQLite by default)

The project is created in the directory <name> under the current directory.
Mesh is not published to a module proxy yet, so the project's go.mod reaches
meshgo.dev/mesh through a replace directive, in one of two ways:

  checkout   (the default) replace to a Mesh checkout on this machine: the
             one --mesh-source DIR names, else $MESH_SOURCE_DIR, else the
             source tree meshc was built from, else the directories above
             the meshc executable. The path is relative when the project is
             inside that tree, absolute otherwise.
  vendored   (with --vendor) copy the runtime's packages from that checkout
             into third_party/mesh and replace to ./third_party/mesh, so the
             project builds without the checkout (CI, a container build,
             another machine). Commit third_party/mesh; to update it, run
             meshc init --vendor in a scratch directory and copy its
             third_party/mesh over.

Flags:
  --clustered            create the clustered starter
  --template NAME        create a starter from a template; supported: todo-api
  --db sqlite|postgres   database of the todo-api template (default sqlite)
  --mesh-source DIR      the Mesh checkout to replace to (or to copy from)
  --vendor               copy the runtime into the project instead

Examples:
  meshc init --clustered my-app
  meshc init --template todo-api --db postgres my-todo
  meshc init --vendor --mesh-source ~/src/mesh --template todo-api --db postgres my-todo
`

// initForms names the three valid ways to call meshc init, for errors.
const initForms = "meshc init <name>, meshc init --clustered <name>, or meshc init --template todo-api [--db sqlite|postgres] <name>"

// projectName is what meshc init accepts as a project name: it becomes a
// directory name, the module path and the binary name.
var projectName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$`)

// initOptions are the flags of meshc init.
type initOptions struct {
	clustered  bool
	template   string
	db         string
	meshSource string
	vendor     bool
}

// initFlags returns the flag set of meshc init and the options it fills.
func initFlags() (*flag.FlagSet, *initOptions) {
	o := &initOptions{}
	fset := flag.NewFlagSet("init", flag.ContinueOnError)
	fset.BoolVar(&o.clustered, "clustered", false, "create the clustered starter")
	fset.StringVar(&o.template, "template", "", "create a starter from template `NAME`: todo-api")
	fset.StringVar(&o.db, "db", "", "database `DB` of the todo-api template: sqlite or postgres")
	fset.StringVar(&o.meshSource, "mesh-source", "", "the Mesh checkout `DIR` to replace to, or to copy from with --vendor")
	fset.BoolVar(&o.vendor, "vendor", false, "copy the runtime source into the project (third_party/mesh) instead of pointing at a checkout")
	return fset, o
}

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset, o := initFlags()
	names, err := parseCommand(fset, args, initUsage, stdout)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { set[f.Name] = true })

	kind, label, err := initKind(set, o.clustered, o.template, o.db)
	if err != nil {
		return err
	}
	switch {
	case len(names) == 0:
		return fmt.Errorf("meshc init needs a project name: %s", initForms)
	case len(names) > 1:
		return fmt.Errorf("meshc init takes one project name, got %d (%s): %s", len(names), strings.Join(names, " "), initForms)
	}
	name := names[0]
	if !projectName.MatchString(name) {
		return fmt.Errorf("invalid project name '%s': use letters, digits, '-' and '_' (dots only between them); the name becomes the directory, module and binary name", name)
	}
	if _, err := os.Lstat(name); err == nil {
		return fmt.Errorf("Directory '%s' already exists; choose another project name or remove that directory", name)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check directory '%s': %w", name, err)
	}
	if !scaffold.Has(kind) {
		return fmt.Errorf("the %s template is not included in this meshc build", kind)
	}
	if set["mesh-source"] && strings.TrimSpace(o.meshSource) == "" {
		return errors.New("--mesh-source needs a directory: the Mesh checkout whose go.mod declares " + scaffold.MeshModule + ", e.g. --mesh-source ~/src/mesh")
	}
	src, err := findMeshSource(o.meshSource, os.Getenv)
	if err != nil {
		return err
	}
	replace := vendorDir
	if !o.vendor {
		if replace, err = replaceTarget(name, src.Dir); err != nil {
			return err
		}
	}
	data := scaffold.Data{
		Name:        name,
		Module:      name,
		MeshModule:  scaffold.MeshModule,
		MeshReplace: scaffold.GoModPath(replace),
		GoVersion:   src.GoVersion,
	}
	if _, err := scaffold.Generate(name, kind, data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("Directory '%s' already exists; choose another project name or remove that directory", name)
		}
		return fmt.Errorf("create project '%s': %w", name, err)
	}
	if o.vendor {
		if err := vendorRuntime(src.Dir, filepath.Join(name, filepath.FromSlash(vendorDir))); err != nil {
			os.RemoveAll(name) // the directory did not exist before this run
			return fmt.Errorf("copy the runtime from %s into '%s': %w", src.Dir, name, err)
		}
	}
	fmt.Fprintf(stdout, "Created %s '%s'\n", label, name)
	return nil
}

// initKind resolves the init flags to a template kind and the label of the
// success line. The checks run in a fixed order, so a command with several
// mistakes always gets the same message: unknown template, then --db without
// the template, then --clustered with a template, then a bad --db value.
func initKind(set map[string]bool, clustered bool, template, db string) (scaffold.Kind, string, error) {
	if set["template"] && template != "todo-api" {
		msg := fmt.Sprintf("unknown init template '%s'; supported templates: todo-api", template)
		if set["db"] {
			msg += "; --db only applies to meshc init --template todo-api [--db sqlite|postgres] <name>"
		}
		return "", "", errors.New(msg)
	}
	if set["db"] && !set["template"] {
		return "", "", errors.New("--db only applies to the todo-api template: meshc init --template todo-api --db sqlite|postgres <name>")
	}
	if set["clustered"] && set["template"] {
		return "", "", fmt.Errorf("--clustered and --template cannot be combined; use one of: %s", initForms)
	}
	switch {
	case set["template"]:
		switch db {
		case "", "sqlite":
			return scaffold.KindTodoSQLite, "todo-api project", nil
		case "postgres":
			return scaffold.KindTodoPostgres, "todo-api project", nil
		default:
			return "", "", fmt.Errorf("unknown --db value '%s'; supported: sqlite, postgres", db)
		}
	case clustered:
		return scaffold.KindClustered, "clustered project", nil
	default:
		return scaffold.KindHello, "project", nil
	}
}

// parseCommand parses the flags and positional arguments of the meshc
// command fset is named after (parseArgs). For -h or --help it prints usage
// to stdout and returns flag.ErrHelp; a bad flag's error ends with the
// command's --help.
func parseCommand(fset *flag.FlagSet, args []string, usage string, stdout io.Writer) ([]string, error) {
	pos, err := parseArgs(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return nil, flag.ErrHelp
	}
	if err != nil {
		return nil, fmt.Errorf("%v; run 'meshc %s --help'", err, fset.Name())
	}
	return pos, nil
}

// parseArgs parses fset from args, allowing flags before, between and after
// positional arguments (the flag package alone stops at the first positional
// argument), and returns the positional arguments. Everything after "--" is
// positional. Parse errors and help requests are returned, never printed.
func parseArgs(fset *flag.FlagSet, args []string) ([]string, error) {
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	var positional []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		rest := fset.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
