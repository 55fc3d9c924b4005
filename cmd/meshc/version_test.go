package main

import (
	"runtime"
	"testing"
)

func TestVersion(t *testing.T) {
	res := mustMeshc(t, t.TempDir(), nil, "version")
	want := "meshc devel\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if res.stdout != want {
		t.Errorf("meshc version = %q, want %q", res.stdout, want)
	}
	res = runMeshc(t, t.TempDir(), nil, "version", "extra")
	if res.code != 1 || res.stderr != "error: meshc version takes no arguments, got 1\n" {
		t.Errorf("meshc version extra: exit %d, stderr %q", res.code, res.stderr)
	}
}
