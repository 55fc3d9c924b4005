package cluster

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// levelCounter counts the records of one message by level.
type levelCounter struct {
	mu     sync.Mutex
	msg    string
	counts map[slog.Level]int
}

func (c *levelCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *levelCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *levelCounter) WithGroup(string) slog.Handler            { return c }
func (c *levelCounter) Handle(_ context.Context, r slog.Record) error {
	if strings.TrimSpace(r.Message) == c.msg {
		c.mu.Lock()
		c.counts[r.Level]++
		c.mu.Unlock()
	}
	return nil
}

func (c *levelCounter) get(l slog.Level) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[l]
}

// A settled pair logs discovery at info level only when a tick's outcome
// changes; the unchanged ticks go to debug.
func TestDiscoveryLogsChangesAtInfo(t *testing.T) {
	port := freePort(t)
	h := &levelCounter{msg: "[mesh-rt discovery]", counts: map[slog.Level]int{}}
	cfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	cfg.Logger = slog.New(h)
	cfg.DiscoveryInterval = 20 * time.Millisecond
	p := startNode(t, cfg)
	s := startNode(t, testConfig(t, "standby", "::1", port, RoleStandby))
	eventually(t, 5*time.Second, func() error {
		if len(p.Peers()) != 1 || len(s.Peers()) != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	settled := h.get(slog.LevelInfo)
	eventually(t, 5*time.Second, func() error {
		if h.get(slog.LevelDebug) < 20 {
			return errors.New("not yet")
		}
		return nil
	})
	if got := h.get(slog.LevelInfo); got == 0 || got > settled+1 {
		t.Fatalf("info-level discovery lines: %d once settled, %d after 20 unchanged ticks", settled, got)
	}
}
