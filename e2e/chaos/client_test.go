package chaos_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"meshgo.dev/mesh/meshtest/chaos"
)

// Client behaviour: every key is retried, under the same key and on either
// node, until it is acknowledged or maxTries answers have come back; a key
// is given up after keyBound in any case.
const (
	clients  = 12
	maxTries = 6
	keyBound = 45 * time.Second
)

// history collects what the clients saw; safe for concurrent use.
type history struct {
	mu  sync.Mutex // guards ops
	ops []chaos.Op
}

func (h *history) add(o chaos.Op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

func (h *history) snapshot() []chaos.Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]chaos.Op(nil), h.ops...)
}

// client is one soak client: its own random stream, its own HTTP
// connections.
type client struct {
	id    int
	seed  int64
	rng   *rand.Rand
	nodes [2]*node
	http  *http.Client
	hist  *history
	kinds []string // what it sends; all three kinds unless set
}

func newClient(id int, seed int64, nodes [2]*node, hist *history) *client {
	return &client{id: id, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), uint64(id)+1)), nodes: nodes, hist: hist,
		http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}}}
}

// pause waits d or until ctx is done: client pacing, not a wait for a
// condition.
func pause(ctx context.Context, d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-tm.C:
	}
}

func (c *client) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)))
}

// run sends keyed requests until ctx is done.
func (c *client) run(ctx context.Context) {
	kinds := c.kinds
	if len(kinds) == 0 {
		kinds = []string{chaos.KindRoute2, chaos.KindRoute1, chaos.KindWork}
	}
	for n := 1; ctx.Err() == nil; n++ {
		kind := kinds[c.rng.IntN(len(kinds))]
		key := fmt.Sprintf("s%d-c%02d-%s-%d", c.seed, c.id, kind, n)
		payload := "payload-of-" + key
		first := time.Now()
		for try := 0; try < maxTries && ctx.Err() == nil && time.Since(first) < keyBound; try++ {
			op := c.send(c.nodes[c.rng.IntN(2)], kind, key, payload)
			c.hist.add(op)
			if op.Acknowledged() {
				// Now and then ask again, on either node: the answer must
				// be the same (a replay for routes, a duplicate for work).
				if c.rng.IntN(3) == 0 {
					c.hist.add(c.send(c.nodes[c.rng.IntN(2)], kind, key, payload))
				}
				break
			}
			pause(ctx, c.between(50*time.Millisecond, 300*time.Millisecond))
		}
		pause(ctx, c.between(30*time.Millisecond, 120*time.Millisecond))
	}
}

// send makes one request and records what came back. A request gets
// hungBound to answer, however the soak is going.
func (c *client) send(n *node, kind, key, payload string) chaos.Op {
	op := chaos.Op{Client: c.id, Node: n.name, Kind: kind, Key: key, Payload: payload, Start: time.Now()}
	ctx, cancel := context.WithTimeout(context.Background(), hungBound)
	defer cancel()
	var target string
	switch kind {
	case chaos.KindRoute2:
		target = n.base + "/r2"
	case chaos.KindRoute1:
		target = n.base + "/r1"
	default:
		target = n.base + "/submit?key=" + url.QueryEscape(key)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader([]byte(payload)))
	if err != nil {
		panic(err) // a malformed URL is a bug in the soak
	}
	req.Header.Set("Content-Type", "text/plain")
	if kind != chaos.KindWork {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
	}
	op.End = time.Now()
	if err != nil {
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			op.Timeout = true
		} else {
			op.Err = err.Error()
		}
		return op
	}
	op.Status = resp.StatusCode
	op.Body = string(body)
	sum := sha256.Sum256(body)
	op.BodyHash = hex.EncodeToString(sum[:])
	var doc struct {
		Attempt string `json:"attempt"`
		Outcome string `json:"outcome"`
		Phase   string `json:"phase"`
		Error   string `json:"error"`
	}
	_ = json.Unmarshal(body, &doc) // a body that is not JSON carries no reason
	op.Attempt, op.Outcome, op.Phase = doc.Attempt, doc.Outcome, doc.Phase
	if !op.Acknowledged() {
		op.Reason = doc.Error
	}
	return op
}
