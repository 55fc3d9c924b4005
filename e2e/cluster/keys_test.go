package cluster_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// keyedGet sends one GET with the given headers (values may repeat) and
// returns status, headers and body; a transport error fails the test.
func keyedGet(t *testing.T, c *http.Client, url string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read: %v", url, err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// readyPair starts a primary and a standby serving the test app over HTTP
// and waits until they are one cluster.
func readyPair(t *testing.T, h *harness, extra ...string) (*node, *node) {
	t.Helper()
	p := h.start("primary", "127.0.0.1", "primary", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	s := h.start("standby", "::1", "standby", append([]string{"TESTAPP_HTTP_ADDR=" + httpAddr(t)}, extra...)...)
	h.waitAuthority(p, "primary", 0, 1, 10*time.Second)
	h.waitAuthority(s, "standby", 0, 1, 10*time.Second)
	httpGet(t, p.http+"/plain") // both HTTP servers answer
	httpGet(t, s.http+"/plain")
	return p, s
}

// Alice and Bob send the same Idempotency-Key to a count-2 route that sets a
// session cookie. Bob never gets Alice's body or cookie; Alice's retry, on
// either node, is her first body without the cookie; and neither token nor
// cookie shows up in records, diagnostics or logs.
func TestRouteKeysScopedByCaller(t *testing.T) {
	h := newHarness(t)
	p, s := readyPair(t, h)
	const aliceToken, bobToken = "Bearer alice-5c0ffee1d2e3", "Bearer bob-9a8b7c6d5e4f"
	c := &http.Client{Timeout: 10 * time.Second}
	alice := http.Header{"Authorization": {aliceToken}, "Idempotency-Key": {"transfer-1"}}
	bob := http.Header{"Authorization": {bobToken}, "Idempotency-Key": {"transfer-1"}}

	code, aHdr, aBody := keyedGet(t, c, p.http+"/session", alice)
	aliceCookie := aHdr.Get("Set-Cookie")
	aliceKey := aHdr.Get("X-Mesh-Continuity-Request-Key")
	if code != 200 || !strings.HasPrefix(aliceCookie, "session=") ||
		!regexp.MustCompile(`^http-route::api\.Session::caller-[0-9a-f]{32}::transfer-1$`).MatchString(aliceKey) {
		t.Fatalf("alice: %d %v %s", code, aHdr, aBody)
	}
	for _, n := range []*node{p, s} {
		h.waitRecord(n, aliceKey, 5*time.Second, completed)
		code, hdr, body := keyedGet(t, c, n.http+"/session", alice)
		if code != 200 || body != aBody || hdr.Get("Set-Cookie") != "" || hdr.Get("X-Mesh-Continuity-Request-Key") != aliceKey {
			t.Fatalf("alice's retry on %s: %d %v %s; first %s", n.name, code, hdr, body, aBody)
		}
	}
	var bobKey string
	for _, n := range []*node{s, p} {
		code, hdr, body := keyedGet(t, c, n.http+"/session", bob)
		if code != 200 || body == aBody || strings.Contains(hdr.Get("Set-Cookie"), strings.TrimPrefix(aliceCookie, "session=")) ||
			hdr.Get("X-Mesh-Continuity-Request-Key") == aliceKey {
			t.Fatalf("bob on %s: %d %v %s; alice had %s %s", n.name, code, hdr, body, aliceCookie, aBody)
		}
		if bobKey == "" {
			bobKey = hdr.Get("X-Mesh-Continuity-Request-Key")
			h.waitRecord(n, bobKey, 5*time.Second, completed)
		}
	}
	secrets := []string{"alice-5c0ffee1d2e3", "bob-9a8b7c6d5e4f", strings.TrimPrefix(strings.Split(aliceCookie, ";")[0], "session=")}
	for _, n := range []*node{p, s} {
		for _, args := range [][]string{{"cluster", "continuity", n.name}, {"cluster", "diagnostics", n.name},
			{"cluster", "continuity", n.name, aliceKey}} {
			out, errs, code := h.meshc(append(args, "--json")...)
			if code != 0 {
				t.Fatalf("meshc %v: %d %s", args, code, errs)
			}
			for _, sec := range secrets {
				if strings.Contains(out, sec) {
					t.Fatalf("meshc %v shows %q", args, sec)
				}
			}
		}
		for _, sec := range secrets {
			if strings.Contains(n.proc.Log(), sec) {
				t.Fatalf("%s logged %q", n.name, sec)
			}
		}
	}
}

// An attacker reads its own minted key and tries to claim the keys that come
// next: the runtime's prefix is refused, a bare id lands in the attacker's
// own scope, and the victim's un-keyed request runs on its own, with its own
// session cookie.
func TestClaimedMintedKeysDoNotReachVictims(t *testing.T) {
	h := newHarness(t)
	p, s := readyPair(t, h)
	c := &http.Client{Timeout: 10 * time.Second}
	attacker := http.Header{"Cookie": {"session=attacker-0f1e2d3c"}}
	minted := regexp.MustCompile(`^(http-route::api\.Session::)([0-9a-f]{32})$`)
	var seen []string
	for _, n := range []*node{p, s, p} {
		code, hdr, body := keyedGet(t, c, n.http+"/session", attacker)
		m := minted.FindStringSubmatch(hdr.Get("X-Mesh-Continuity-Request-Key"))
		if code != 200 || m == nil {
			t.Fatalf("attacker's un-keyed request on %s: %d %v %s", n.name, code, hdr, body)
		}
		seen = append(seen, m[0])
	}
	if seen[0][:40] == seen[2][:40] {
		t.Fatalf("two minted keys of one node share a prefix: %q %q", seen[0], seen[2])
	}
	// Claim the attacker's own key, guesses next to it, and their bare ids.
	var claims []string
	for _, k := range seen {
		m := minted.FindStringSubmatch(k)
		id := []byte(m[2])
		id[31] ^= 1
		claims = append(claims, k, m[1]+string(id), m[1]+strings.Repeat("0", 32), m[2], string(id))
	}
	var attackerKeys []string
	for i, k := range claims {
		n := []*node{p, s}[i%2]
		hdr := attacker.Clone()
		hdr.Set("Idempotency-Key", k)
		code, rh, body := keyedGet(t, c, n.http+"/session", hdr)
		switch {
		case strings.HasPrefix(k, "http-route::"):
			if code != 400 || strings.TrimSpace(body) != `{"error":"request_key_reserved"}` || rh.Get("X-Mesh-Continuity-Request-Key") != "" {
				t.Fatalf("claim of %q on %s: %d %v %s", k, n.name, code, rh, body)
			}
		default:
			got := rh.Get("X-Mesh-Continuity-Request-Key")
			if code != 200 || !strings.Contains(got, "::caller-") || !strings.HasSuffix(got, "::"+k) {
				t.Fatalf("bare id %q on %s: %d %q %s", k, n.name, code, got, body)
			}
			attackerKeys = append(attackerKeys, got)
		}
	}
	// The victim, un-keyed and with its own cookie, on both nodes.
	for _, n := range []*node{p, s} {
		code, hdr, body := keyedGet(t, c, n.http+"/session", http.Header{"Cookie": {"session=victim-aa55"}})
		key := hdr.Get("X-Mesh-Continuity-Request-Key")
		if code != 200 || !minted.MatchString(key) || !strings.Contains(hdr.Get("Set-Cookie"), "session=") ||
			strings.Contains(hdr.Get("Set-Cookie"), "attacker") {
			t.Fatalf("victim on %s: %d %v %s", n.name, code, hdr, body)
		}
		for _, k := range append(append([]string{}, seen...), attackerKeys...) {
			if key == k {
				t.Fatalf("victim on %s got the attacker's key %s", n.name, k)
			}
		}
		r := h.waitRecord(n, key, 5*time.Second, completed)
		if r.ExecutionNode == "" || r.RuntimeName != "api.Session" {
			t.Fatalf("victim's record %+v", r)
		}
	}
}

// A client that names the startup record (startup::work.Add) during boot
// convergence is refused, and startup work still runs once and completes.
func TestStartupKeyFromClientIsRefused(t *testing.T) {
	h := newHarness(t)
	p := h.start("primary", "127.0.0.1", "primary", "TESTAPP_HTTP_ADDR="+httpAddr(t), "MESH_STARTUP_WORK_DELAY_MS=2000")
	s := h.start("standby", "::1", "standby", "TESTAPP_HTTP_ADDR="+httpAddr(t), "MESH_STARTUP_WORK_DELAY_MS=2000")
	c := &http.Client{Timeout: 5 * time.Second}
	refused := 0
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		n := []*node{p, s}[i%2]
		req, _ := http.NewRequest(http.MethodGet, n.http+"/todos", nil)
		req.Header.Set("Idempotency-Key", addKey)
		resp, err := c.Do(req)
		if err != nil {
			continue // the HTTP server is not up yet
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || strings.TrimSpace(string(body)) != `{"error":"request_key_reserved"}` {
			t.Fatalf("GET /todos with %s on %s: %d %s", addKey, n.name, resp.StatusCode, body)
		}
		refused++
		if r, err := h.record(p, addKey); err == nil && r.Phase == "completed" {
			break
		}
	}
	if refused == 0 {
		t.Fatal("no request reached a node during boot")
	}
	for _, n := range []*node{p, s} {
		r := h.waitRecord(n, addKey, 15*time.Second, completed)
		if r.RuntimeName != "work.Add" || r.AttemptID == "" || r.ExecutionNode != r.OwnerNode {
			t.Fatalf("%s: startup record %+v", n.name, r)
		}
		l, err := h.list(n)
		if err != nil {
			t.Fatal(err)
		}
		if l.TotalRecords != 1 {
			t.Fatalf("%s holds %d records after %d refused requests: %+v", n.name, l.TotalRecords, refused, l.Records)
		}
	}
	// The owner logs startup_completed right after completing the record.
	h.eventually(5*time.Second, func() error {
		completions := 0
		for _, n := range []*node{p, s} {
			d, err := h.diagnostics(n)
			if err != nil {
				return err
			}
			completions += len(d.find("startup_completed", addKey))
			if bad := d.find("startup_rejected", ""); len(bad) != 0 {
				t.Fatalf("%s: startup_rejected %+v", n.name, bad)
			}
		}
		if completions != 1 {
			return fmt.Errorf("startup_completed %d times across the pair, want once (%d requests refused)", completions, refused)
		}
		return nil
	})
	t.Logf("%d client requests naming %s refused during boot; startup work completed once", refused, addKey)
}

// The retention byte budget bounds the heap: 10,000 keyed requests answering
// 60 KiB each (600 MB of responses) leave each node's live heap under the
// budget plus a fixed margin, on the node that served them and on its peer,
// which mirrors every record.
func TestRetainedBytesBoundTheHeap(t *testing.T) {
	const (
		budget   = 16 << 20
		margin   = 8 << 20 // the runtime, the HTTP servers, 10,000 records' index and count-bounded bookkeeping
		requests = 10_000
		workers  = 4
	)
	h := newHarness(t)
	p, s := readyPair(t, h, fmt.Sprintf("MESH_CONTINUITY_RETAIN_BYTES=%d", budget), "TESTAPP_DEBUG_HEAP=1")
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	heapOf := func(n *node) uint64 {
		t.Helper()
		_, _, body := keyedGet(t, c, n.http+"/debug/heap", nil)
		var v struct {
			HeapAlloc uint64 `json:"heap_alloc"`
		}
		if err := json.Unmarshal([]byte(body), &v); err != nil || v.HeapAlloc == 0 {
			t.Fatalf("heap of %s: %v %s", n.name, err, body)
		}
		return v.HeapAlloc
	}
	before := []uint64{heapOf(p), heapOf(s)}

	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= requests || time.Since(start) > 3*time.Minute {
					return
				}
				req, _ := http.NewRequest(http.MethodGet, p.http+"/large", nil)
				req.Header.Set("Idempotency-Key", fmt.Sprintf("large-%d-%d", w, i))
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || n != 60<<10 {
					errs <- fmt.Errorf("request %d: %d, %d bytes", i, resp.StatusCode, n)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if sent := next.Load(); sent < requests {
		t.Fatalf("only %d of %d requests within the time bound", sent, requests)
	}
	elapsed := time.Since(start)
	for i, n := range []*node{p, s} {
		after := heapOf(n)
		t.Logf("%s: live heap %.1f MiB before, %.1f MiB after %d responses of 60 KiB in %v (budget %d MiB + margin %d MiB)",
			n.name, float64(before[i])/(1<<20), float64(after)/(1<<20), requests, elapsed.Round(time.Millisecond), budget>>20, margin>>20)
		if after > budget+margin {
			t.Errorf("%s: live heap %.1f MiB exceeds the %d MiB budget plus %d MiB", n.name, float64(after)/(1<<20), budget>>20, margin>>20)
		}
	}
	// The bytes, not the count (10,000), bounded what each node kept.
	for _, n := range []*node{p, s} {
		l, err := h.list(n)
		if err != nil {
			t.Fatal(err)
		}
		if max := budget / (60 << 10); l.TotalRecords > max {
			t.Errorf("%s retains %d records of 60 KiB under a %d MiB budget", n.name, l.TotalRecords, budget>>20)
		}
	}
}
