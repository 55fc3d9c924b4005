package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// railNames are the proof rails, in the order the Distributed Proof page
// presents them.
var railNames = []string{"staged-deploy", "failover", "public-surface"}

// rails records each rail's --help text (rail-<name>-help.txt) and the
// phases it runs, in order, as its --phases prints them
// (rail-<name>-phases.txt). Both flags only print; they start nothing and
// write nothing.
func rails(ctx context.Context, root string) (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, name := range railNames {
		script := filepath.Join("scripts", "verify-"+name+".sh")
		help, err := runRail(ctx, root, script, "--help")
		if err != nil {
			return nil, err
		}
		var t transcript
		t.cmd("bash "+script+" --help", help)
		files["rail-"+name+"-help.txt"] = t.bytes()

		phases, err := runRail(ctx, root, script, "--phases")
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(phases) == "" {
			return nil, fmt.Errorf("bash %s --phases printed no phase", script)
		}
		files["rail-"+name+"-phases.txt"] = []byte(strings.TrimRight(phases, "\n") + "\n")
	}
	return files, nil
}

func runRail(ctx context.Context, root, script, flag string) (string, error) {
	cmd := exec.CommandContext(ctx, "bash", script, flag)
	cmd.Dir = root
	cmd.Env = cleanEnv(nil)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("bash %s %s: %w\n%s", script, flag, err, out)
	}
	return string(out), nil
}
