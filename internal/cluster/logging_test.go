package cluster

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// Without a format, a node logs through the process's default logger
// itself, so its text lines are unchanged.
func TestDefaultLogFormatIsTheDefaultLogger(t *testing.T) {
	for _, f := range []string{"", LogFormatText} {
		if got := (Config{LogFormat: f}).withDefaults().Logger; got != slog.Default() {
			t.Errorf("LogFormat %q: logger %p, want slog.Default()", f, got)
		}
	}
	if got := (Config{LogFormat: LogFormatJSON}).withDefaults().Logger; got == slog.Default() {
		t.Error("LogFormat json kept the default logger")
	}
}

// With the JSON format every line a pair writes through a failover is one
// JSON object; each line about a diagnostic entry carries its transition,
// and the keys are the operator output's.
func TestJSONLogsThroughFailover(t *testing.T) {
	var pout, sout syncBuffer
	port := freePort(t)
	pcfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	pcfg.Logger = formatLogger(LogFormatJSON, &pout)
	scfg := testConfig(t, "standby", "::1", port, RoleStandby)
	scfg.Logger = formatLogger(LogFormatJSON, &sout)
	p := startNode(t, pcfg)
	s := startNode(t, scfg)
	eventually(t, 5*time.Second, func() error {
		if len(s.Peers()) != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	kill(t, p)
	eventually(t, 5*time.Second, func() error {
		if r, _ := s.Authority(); r != RolePrimary {
			return errors.New("not yet")
		}
		// The role changes (promote) before automatic_promotion is
		// recorded, and lines are delivered after the entries.
		if !strings.Contains(sout.String(), `"transition":"automatic_promotion"`) {
			return errors.New("automatic_promotion not logged yet")
		}
		return nil
	})
	for name, out := range map[string]string{"primary": pout.String(), "standby": sout.String()} {
		transitions := map[string]bool{}
		lines := 0
		for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
			lines++
			var obj map[string]any
			if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
				t.Fatalf("%s line %q is not JSON: %v", name, sc.Text(), err)
			}
			msg, _ := obj["msg"].(string)
			if !strings.HasPrefix(msg, "[mesh-rt ") {
				t.Errorf("%s line without a runtime prefix: %s", name, sc.Text())
			}
			tr, ok := obj["transition"].(string)
			if !ok || tr == "" {
				t.Errorf("%s line without a transition: %s", name, sc.Text())
			}
			transitions[tr] = true
			if _, ok := obj["promotion_epoch"]; !ok && (msg == logContinuity || msg == logStartup) {
				t.Errorf("%s diagnostic line without promotion_epoch: %s", name, sc.Text())
			}
		}
		if lines == 0 {
			t.Fatalf("%s wrote nothing", name)
		}
		if name == "standby" && (!transitions["automatic_promotion"] || !transitions["promote"] || !transitions["node_down"]) {
			t.Errorf("standby transitions %v, want the promotion", transitions)
		}
	}
}

func TestLineTransition(t *testing.T) {
	for msg, want := range map[string]string{
		"[mesh-rt membership] node down":                              "node_down",
		"[mesh-rt transport] listening":                               "listening",
		"[mesh-rt discovery]":                                         "discovery",
		"[mesh-rt transport] handshake failed: authentication failed": "handshake_failed",
		"[mesh-rt membership] peer reachable again; no loss handling": "peer_reachable_again",
		"[mesh-rt continuity] transition=merge_rejected":              "merge_rejected",
		"something else entirely":                                     "something_else_entirely",
	} {
		if got := lineTransition(msg); got != want {
			t.Errorf("lineTransition(%q) = %q, want %q", msg, got, want)
		}
	}
}

// A JSON line that already carries a transition keeps it; one that does
// not gets the event of its message.
func TestJSONLinesCarryATransition(t *testing.T) {
	var out syncBuffer
	l := formatLogger(LogFormatJSON, &out).With("node", "a")
	l.Info("[mesh-rt membership] node up", "peer", "b")
	l.Info(logContinuity, "transition", "promote", "promotion_epoch", "1")
	var lines []map[string]any
	for sc := bufio.NewScanner(strings.NewReader(out.String())); sc.Scan(); {
		var obj map[string]any
		if err := json.Unmarshal(sc.Bytes(), &obj); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		lines = append(lines, obj)
	}
	if len(lines) != 2 || lines[0]["transition"] != "node_up" || lines[0]["node"] != "a" ||
		lines[1]["transition"] != "promote" || strings.Count(out.String(), `"transition"`) != 2 {
		t.Fatalf("lines %s", out.String())
	}
}
