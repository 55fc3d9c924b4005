package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// TestOperatorListLargerThanAFrame: a node whose record list is larger than
// one frame (16 MiB) answers `meshc cluster continuity` with the whole list,
// not a refusal. Seventeen records carry a 1 MiB handler error each.
func TestOperatorListLargerThanAFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 17 MiB reply")
	}
	big := strings.Repeat("e", 1<<20)
	handlers := &registry{handlers: map[string]*handler{
		"ops.Fail": {name: "ops.Fail", count: 1, kind: continuity.KindWork,
			run: func(context.Context) error { return errors.New(big) }},
	}}
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	n := startNode(t, cfg, withHandlers(handlers))
	const records = 17
	for i := range records {
		key := fmt.Sprintf("big-%02d", i)
		if _, err := n.Submit(t.Context(), Declaration{RuntimeName: "ops.Fail", ReplicationCount: 1}, key, "p"); err != nil {
			t.Fatalf("submit %s: %v", key, err)
		}
	}
	eventually(t, 10*time.Second, func() error {
		for i := range records {
			if r, ok := n.reg.Get(fmt.Sprintf("big-%02d", i)); !ok || r.Pending() {
				return fmt.Errorf("record big-%02d not ended", i)
			}
		}
		return nil
	})
	body, err := operator.Query(t.Context(), n.cfg.NodeName, []byte(cfg.Cookie),
		wire.OperatorQuery{Kind: uint8(operator.KindContinuityList)}, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= wire.MaxFrame {
		t.Fatalf("the list is %d bytes; the test should cross one frame (%d)", len(body), wire.MaxFrame)
	}
	l, err := operator.DecodeContinuityList(body)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, r := range l.Records {
		if strings.HasPrefix(r.RequestKey, "big-") {
			found++
			if r.Error != "handler_error: "+big {
				t.Errorf("%s: error of %d bytes, want the handler's 1 MiB", r.RequestKey, len(r.Error))
			}
		}
	}
	if found != records || l.Truncated {
		t.Fatalf("listed %d of the %d records (truncated %v)", found, records, l.Truncated)
	}
}
