package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/scaffold"
)

const versionUsage = `Usage: meshc version

Prints the meshc version, the Mesh module version and VCS revision recorded
in the binary's build information, the newest cluster protocol version it
speaks and the oldest it still links with (a node and a meshc, or two nodes,
link on the newer version both speak, and refuse each other when they share
none), and the Go toolchain it was built with.
A binary built from a source tree has no module version ("devel"); one built
with -buildvcs=false, outside a git checkout or by go install from the module
proxy records no revision, and says so.

Example:
  meshc version
`

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("version", flag.ContinueOnError)
	pos, err := parseCommand(fset, args, versionUsage, stdout)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("meshc version takes no arguments, got %d; run 'meshc version' alone", len(pos))
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	_, err = io.WriteString(stdout, versionText(bi, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH))
	return err
}

// buildVersion is what a binary's build information says about the Mesh
// module it was built from.
type buildVersion struct {
	module   string // module path, scaffold.MeshModule unless built into another module
	version  string // module version; "" for a build from a source tree
	revision string // VCS revision; "" when none was recorded
	time     string // VCS commit time, RFC 3339; "" when none was recorded
	modified bool   // the working tree had uncommitted changes
}

// readBuildVersion extracts the Mesh module's version and the VCS stamp from
// bi, which may be nil (a binary without build information). "(devel)", the
// go command's word for a main module built from its source tree, counts as
// no version.
func readBuildVersion(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{module: scaffold.MeshModule}
	if bi == nil {
		return v
	}
	mod := &bi.Main
	if mod.Path != scaffold.MeshModule {
		for _, d := range bi.Deps {
			if d.Path == scaffold.MeshModule {
				mod = d
				if d.Replace != nil {
					mod = d.Replace
					v.module = scaffold.MeshModule + " => " + d.Replace.Path
				}
				break
			}
		}
	}
	if mod.Version != "(devel)" {
		v.version = mod.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.revision = s.Value
		case "vcs.time":
			v.time = s.Value
		case "vcs.modified":
			v.modified = s.Value == "true"
		}
	}
	return v
}

// shortVersion is the first line's version of meshc version: the module
// version, or "devel".
func shortVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	if v := readBuildVersion(bi).version; v != "" {
		return v
	}
	return "devel"
}

// versionText renders meshc version's output. The first line is always
// "meshc <version>" ("meshc devel" without a module version), so scripts can
// read it; the lines after it are aligned "key: value" text.
func versionText(bi *debug.BuildInfo, toolchain string) string {
	v := readBuildVersion(bi)
	short := v.version
	if short == "" {
		short = "devel"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "meshc %s\n", short)
	switch {
	case bi == nil:
		fmt.Fprintf(&b, "module:   %s (this binary carries no build information)\n", v.module)
	case v.version == "":
		fmt.Fprintf(&b, "module:   %s (devel: built from a source tree, not a released version)\n", v.module)
	default:
		fmt.Fprintf(&b, "module:   %s %s\n", v.module, v.version)
	}
	switch {
	case v.revision == "":
		b.WriteString("revision: unknown (no VCS information recorded: built with -buildvcs=false, outside a git checkout, or from the module proxy)\n")
	default:
		rev := v.revision
		if v.time != "" {
			rev += " (" + v.time + ")"
		}
		if v.modified {
			rev += ", with uncommitted changes"
		}
		fmt.Fprintf(&b, "revision: %s\n", rev)
	}
	fmt.Fprintf(&b, "protocol: %d (links with nodes and meshc on %d to %d)\n", handshake.Version, handshake.MinVersion, handshake.Version)
	fmt.Fprintf(&b, "go:       %s\n", toolchain)
	return b.String()
}
