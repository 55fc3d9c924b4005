package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/handshake"
)

func TestVersion(t *testing.T) {
	res := mustMeshc(t, t.TempDir(), nil, "version")
	want := versionText(readTestBuildInfo(t, meshcBin), runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH)
	if res.stdout != want {
		t.Errorf("meshc version = %q, want %q", res.stdout, want)
	}
	if !strings.HasPrefix(res.stdout, "meshc ") || !strings.Contains(res.stdout, "\nrevision: ") || !strings.HasSuffix(res.stdout, "go:       "+runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH+"\n") {
		t.Errorf("meshc version output lacks a line:\n%s", res.stdout)
	}
	res = runMeshc(t, t.TempDir(), nil, "version", "extra")
	if res.code != 1 || res.stderr != "error: meshc version takes no arguments, got 1; run 'meshc version' alone\n" {
		t.Errorf("meshc version extra: exit %d, stderr %q", res.code, res.stderr)
	}
}

// readTestBuildInfo reads the build information of the binary at path with
// the go command, independently of meshc's own reading.
func readTestBuildInfo(t *testing.T, path string) *debug.BuildInfo {
	t.Helper()
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil {
		t.Fatalf("go version -m %s: %v", filepath.Base(path), err)
	}
	// go version -m prints "<path>: <go version>" and then the build info in
	// the format debug.ParseBuildInfo reads, indented by a tab.
	_, body, _ := strings.Cut(string(out), "\n")
	body = strings.ReplaceAll("\n"+body, "\n\t", "\n")
	bi, err := debug.ParseBuildInfo(strings.TrimPrefix(body, "\n"))
	if err != nil {
		t.Fatalf("parse build info of %s: %v\n%s", filepath.Base(path), err, out)
	}
	return bi
}

func TestVersionText(t *testing.T) {
	goLine := fmt.Sprintf("protocol: %d (links with nodes and meshc on %d to %d)\n", handshake.Version, handshake.MinVersion, handshake.Version) + "go:       go1.26.0 linux/amd64\n"
	stamp := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "d24036a41850ca43340d4749e126add7b86113f2"},
		{Key: "vcs.time", Value: "2026-12-06T06:03:39Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	dirty := append(append([]debug.BuildSetting(nil), stamp[:3]...), debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	noVCS := "revision: unknown (no VCS information recorded: built with -buildvcs=false, outside a git checkout, or from the module proxy)\n"
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil,
			"meshc devel\nmodule:   meshgo.dev/mesh (this binary carries no build information)\n" + noVCS + goLine},
		{"source tree without VCS", &debug.BuildInfo{Main: debug.Module{Path: "meshgo.dev/mesh", Version: "(devel)"}},
			"meshc devel\nmodule:   meshgo.dev/mesh (devel: built from a source tree, not a released version)\n" + noVCS + goLine},
		{"empty version", &debug.BuildInfo{Main: debug.Module{Path: "meshgo.dev/mesh"}},
			"meshc devel\nmodule:   meshgo.dev/mesh (devel: built from a source tree, not a released version)\n" + noVCS + goLine},
		{"release from the proxy", &debug.BuildInfo{Main: debug.Module{Path: "meshgo.dev/mesh", Version: "v1.2.3", Sum: "h1:x"}},
			"meshc v1.2.3\nmodule:   meshgo.dev/mesh v1.2.3\n" + noVCS + goLine},
		{"checkout, clean", &debug.BuildInfo{Main: debug.Module{Path: "meshgo.dev/mesh", Version: "v0.0.0-20261206060339-d24036a41850"}, Settings: stamp},
			"meshc v0.0.0-20261206060339-d24036a41850\nmodule:   meshgo.dev/mesh v0.0.0-20261206060339-d24036a41850\nrevision: d24036a41850ca43340d4749e126add7b86113f2 (2026-12-06T06:03:39Z)\n" + goLine},
		{"checkout, modified", &debug.BuildInfo{Main: debug.Module{Path: "meshgo.dev/mesh", Version: "(devel)"}, Settings: dirty},
			"meshc devel\nmodule:   meshgo.dev/mesh (devel: built from a source tree, not a released version)\nrevision: d24036a41850ca43340d4749e126add7b86113f2 (2026-12-06T06:03:39Z), with uncommitted changes\n" + goLine},
		{"built into another module, replaced", &debug.BuildInfo{
			Main: debug.Module{Path: "example.com/tools", Version: "(devel)"},
			Deps: []*debug.Module{{Path: "meshgo.dev/mesh", Version: "v0.0.0-00010101000000-000000000000", Replace: &debug.Module{Path: "../mesh", Version: ""}}},
		}, "meshc devel\nmodule:   meshgo.dev/mesh => ../mesh (devel: built from a source tree, not a released version)\n" + noVCS + goLine},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionText(tc.bi, "go1.26.0 linux/amd64"); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
