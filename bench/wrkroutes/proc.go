package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"time"
)

// runBounded runs name with args, killing it if it has not finished within
// limit (it stays in our process group, so Ctrl-C reaches it too), and returns its combined output and the CPU
// time (user + system) it used.
func runBounded(name string, args []string, limit time.Duration) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		return out.String(), 0, fmt.Errorf("still running after %v: killed", limit)
	}
	if err != nil {
		return out.String(), 0, err
	}
	st := cmd.ProcessState
	return out.String(), st.UserTime() + st.SystemTime(), nil
}
