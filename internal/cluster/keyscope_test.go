package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/exchange"
	"meshgo.dev/mesh/meshtest"
)

// routeScope returns what node n puts before a client's Idempotency-Key in
// the request key of the route named name, for a caller whose credential
// headers are h (default scope).
func routeScope(n *Node, name string, h http.Header) string {
	return n.scopedRouteKey(name, defaultKeyScope, h, "")
}

var sessionCalls atomic.Int64

// SessionThing answers like a login: a fresh session cookie and a body that
// names the call, so a test sees which execution a response came from.
func SessionThing(w http.ResponseWriter, r *http.Request) {
	n := sessionCalls.Add(1)
	http.SetCookie(w, &http.Cookie{Name: "session", Value: fmt.Sprintf("sess-%d", n)})
	w.Header().Set("Content-Type", "application/json")
	w.Header()["connection-scoped"] = []string{"yes"} // named by Connection below, in another case
	w.Header().Set("Connection", "Connection-Scoped")
	w.Header().Set("X-Call", fmt.Sprint(n))
	fmt.Fprintf(w, `{"call":%d}`, n)
}

// SessionReplayed is SessionThing on a route that opts in to replaying its cookie.
func SessionReplayed(w http.ResponseWriter, r *http.Request) { SessionThing(w, r) }

// SessionByAPIKey is SessionThing on a route whose callers are told apart by X-Api-Key.
func SessionByAPIKey(w http.ResponseWriter, r *http.Request) { SessionThing(w, r) }

// SessionShared is SessionThing on a route whose callers share one key space.
func SessionShared(w http.ResponseWriter, r *http.Request) { SessionThing(w, r) }

var (
	routeSession         = Clustered(1, SessionThing)
	routeSessionReplayed = Clustered(1, SessionReplayed, ReplayHeaders("set-cookie"))
	routeSessionAPIKey   = Clustered(1, SessionByAPIKey, KeyScope("X-Api-Key"))
	routeSessionShared   = Clustered(1, SessionShared, KeyScope())
)

// standalone starts a standalone node (no network) for route tests.
func standalone(tb testing.TB, cfg Config) *Node {
	tb.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Start(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n
}

// serveRoute serves one request to h and returns the recorded response.
func serveRoute(h http.Handler, method, target, body string, hdr http.Header) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// Two callers sending the same Idempotency-Key and body get two records and
// two executions; a retry by one caller is answered from its own record
// only, and never carries the Set-Cookie (or hop-by-hop headers) of the
// stored response. Credentials appear in no record and no diagnostic.
func TestRouteKeysScopedByCaller(t *testing.T) {
	p, s := pair(t)
	const aliceToken, bobToken = "Bearer alice-7d1e0c3b9a", "Bearer bob-44f0e2a1c8"
	alice := http.Header{"Authorization": {aliceToken}, HeaderIdempotencyKey: {"transfer-1"}}
	bob := http.Header{"Authorization": {bobToken}, HeaderIdempotencyKey: {"transfer-1"}}
	a1 := serveRoute(p.For(routeSession), "POST", "/session", `{"amount":5}`, alice)
	if a1.Code != 200 || a1.Header().Get("Set-Cookie") == "" || a1.Header()["connection-scoped"] == nil {
		t.Fatalf("alice first: %d %v %s", a1.Code, a1.Header(), a1.Body)
	}
	aliceKey := a1.Header().Get(HeaderRequestKey)
	if want := routeScope(p, "cluster.SessionThing", http.Header{"Authorization": {aliceToken}}) + "transfer-1"; aliceKey != want {
		t.Fatalf("alice's request key %q, want %q", aliceKey, want)
	}
	// Alice's retry, through either node, is her stored response without
	// the withheld headers.
	for _, n := range []*Node{p, s} {
		var a2 *httptest.ResponseRecorder
		eventually(t, 3*time.Second, func() error {
			a2 = serveRoute(n.For(routeSession), "POST", "/session", `{"amount":5}`, alice)
			if a2.Code != 200 || a2.Body.String() != a1.Body.String() {
				return fmt.Errorf("alice retry on %s: %d %s, first %s", n.Name(), a2.Code, a2.Body, a1.Body)
			}
			return nil
		})
		if a2.Header().Get("Set-Cookie") != "" || a2.Header()["connection-scoped"] != nil || a2.Header().Get("Connection") != "" {
			t.Fatalf("a replay carried withheld headers: %v", a2.Header())
		}
		if a2.Header().Get("X-Call") != a1.Header().Get("X-Call") || a2.Header().Get(HeaderRequestKey) != aliceKey {
			t.Fatalf("replay headers %v, first %v", a2.Header(), a1.Header())
		}
	}
	// Bob, same key and body, through either node: his own execution.
	b1 := serveRoute(s.For(routeSession), "POST", "/session", `{"amount":5}`, bob)
	if b1.Code != 200 || b1.Body.String() == a1.Body.String() || b1.Header().Get("Set-Cookie") == a1.Header().Get("Set-Cookie") ||
		b1.Header().Get(HeaderRequestKey) == aliceKey {
		t.Fatalf("bob got %d %v %s; alice had %v %s", b1.Code, b1.Header(), b1.Body, a1.Header(), a1.Body)
	}
	// A request with no credentials, or with both alice's token and a
	// cookie, is neither alice's nor bob's.
	for _, hdr := range []http.Header{
		{HeaderIdempotencyKey: {"transfer-1"}},
		{"Authorization": {aliceToken}, "Cookie": {"sid=1"}, HeaderIdempotencyKey: {"transfer-1"}},
		{"Authorization": {aliceToken, aliceToken}, HeaderIdempotencyKey: {"transfer-1"}},
	} {
		w := serveRoute(p.For(routeSession), "POST", "/session", `{"amount":5}`, hdr)
		if w.Code != 200 || w.Body.String() == a1.Body.String() || w.Body.String() == b1.Body.String() {
			t.Fatalf("%v answered from another caller's record: %d %s", hdr, w.Code, w.Body)
		}
	}
	// Neither the credentials nor the cookies reach records or diagnostics.
	for _, n := range []*Node{p, s} {
		eventually(t, 3*time.Second, func() error {
			if r, ok := n.Record(aliceKey); !ok || r.Phase != continuity.PhaseCompleted {
				return fmt.Errorf("%s: alice's record %+v", n.Name(), r)
			}
			return nil
		})
		r, _ := n.Record(aliceKey)
		stored, err := exchange.DecodeStored(r.Response)
		if err != nil || len(stored.Header["Set-Cookie"]) != 0 || len(stored.Header["Connection"]) != 0 ||
			len(stored.Header["connection-scoped"]) != 0 || len(stored.Header["X-Call"]) != 1 {
			t.Fatalf("%s stores alice's response as %+v (%v)", n.Name(), stored.Header, err)
		}
		recs, _ := json.Marshal(n.Records())
		diag, _ := json.Marshal(n.Diagnostics())
		for _, secret := range []string{"alice-7d1e0c3b9a", "bob-44f0e2a1c8", "sid=1", "sess-"} {
			if strings.Contains(string(recs), secret) || strings.Contains(string(diag), secret) {
				t.Fatalf("%s: %q appears in records or diagnostics", n.Name(), secret)
			}
		}
	}
}

// A route may opt in to replaying Set-Cookie; and a route scoped by its own
// header tells callers apart by that header alone.
func TestRouteKeyScopeOptions(t *testing.T) {
	n := standalone(t, Config{})
	hdr := http.Header{HeaderIdempotencyKey: {"k"}}
	first := serveRoute(n.For(routeSessionReplayed), "GET", "/r", "", hdr)
	again := serveRoute(n.For(routeSessionReplayed), "GET", "/r", "", hdr)
	if first.Code != 200 || again.Body.String() != first.Body.String() || again.Header().Get("Set-Cookie") != first.Header().Get("Set-Cookie") {
		t.Fatalf("opted-in replay: %v %s, first %v %s", again.Header(), again.Body, first.Header(), first.Body)
	}
	if again.Header().Get("Connection") != "" {
		t.Fatalf("opting in to Set-Cookie replayed Connection: %v", again.Header())
	}

	route := n.For(routeSessionAPIKey)
	k1 := serveRoute(route, "GET", "/k", "", http.Header{"X-Api-Key": {"one"}, "Authorization": {"a"}, HeaderIdempotencyKey: {"k"}})
	k1b := serveRoute(route, "GET", "/k", "", http.Header{"X-Api-Key": {"one"}, "Authorization": {"b"}, HeaderIdempotencyKey: {"k"}})
	k2 := serveRoute(route, "GET", "/k", "", http.Header{"X-Api-Key": {"two"}, "Authorization": {"a"}, HeaderIdempotencyKey: {"k"}})
	if k1b.Body.String() != k1.Body.String() || k2.Body.String() == k1.Body.String() {
		t.Fatalf("X-Api-Key scope: %s / %s / %s", k1.Body, k1b.Body, k2.Body)
	}

	shared := n.For(routeSessionShared)
	s1 := serveRoute(shared, "GET", "/s", "", http.Header{"Authorization": {"a"}, HeaderIdempotencyKey: {"k"}})
	s2 := serveRoute(shared, "GET", "/s", "", http.Header{"Authorization": {"b"}, HeaderIdempotencyKey: {"k"}})
	if s1.Code != 200 || s2.Body.String() != s1.Body.String() {
		t.Fatalf("KeyScope(): %s / %s, want one shared record", s1.Body, s2.Body)
	}

	func() {
		defer func() {
			if v := recover(); v == nil || !strings.Contains(fmt.Sprint(v), "other options") {
				t.Fatalf("redeclaring a route with other options: %v", v)
			}
		}()
		Clustered(1, SessionThing, KeyScope("X-Other"))
	}()
	Clustered(1, SessionThing, KeyScope("cookie", "AUTHORIZATION", "Authorization")) // the default, spelled otherwise
}

// Client keys that are invalid or name the runtime's own key spaces are
// refused before any record exists, and the handler does not run.
func TestRouteRefusesReservedAndInvalidKeys(t *testing.T) {
	n := standalone(t, Config{RouteMaxBodyBytes: 64})
	route := n.For(routeSession)
	minted := serveRoute(route, "GET", "/s", "", nil).Header().Get(HeaderRequestKey)
	before := sessionCalls.Load()
	for _, tt := range []struct {
		keys   []string
		reason continuity.Reason
	}{
		{[]string{"startup::cluster.Add"}, continuity.ReasonRequestKeyReserved},
		{[]string{"http-route::cluster.SessionThing::0"}, continuity.ReasonRequestKeyReserved},
		{[]string{minted}, continuity.ReasonRequestKeyReserved},
		{[]string{"request::x"}, continuity.ReasonRequestKeyReserved},
		{[]string{"a", "b"}, continuity.ReasonRequestKeyInvalid},
		{[]string{"a", ""}, continuity.ReasonRequestKeyInvalid},
		{[]string{"with space"}, continuity.ReasonRequestKeyInvalid},
		{[]string{"\xff"}, continuity.ReasonRequestKeyInvalid},
		{[]string{strings.Repeat("k", 256)}, continuity.ReasonRequestKeyInvalid},
	} {
		w := serveRoute(route, "GET", "/s", "", http.Header{HeaderIdempotencyKey: tt.keys})
		if want := `{"error":"` + string(tt.reason) + `"}`; w.Code != 400 || strings.TrimSpace(w.Body.String()) != want ||
			w.Header().Get(HeaderRequestKey) != "" {
			t.Errorf("keys %q: %d %v %s, want 400 %s", tt.keys, w.Code, w.Header(), w.Body, want)
		}
	}
	if got := sessionCalls.Load() - before; got != 0 {
		t.Fatalf("refused requests ran the handler %d times", got)
	}
	if w := serveRoute(route, "POST", "/s", strings.Repeat("b", 65), nil); w.Code != 413 ||
		strings.TrimSpace(w.Body.String()) != `{"error":"request_body_too_large"}` {
		t.Fatalf("body over the limit: %d %s", w.Code, w.Body)
	}
	if w := serveRoute(route, "POST", "/s", strings.Repeat("b", 64), nil); w.Code != 200 {
		t.Fatalf("body at the limit: %d %s", w.Code, w.Body)
	}
	// Declared work cannot be submitted under a runtime key either.
	for _, key := range []string{"startup::cluster.Add", "http-route::cluster.SessionThing::x", "request::1"} {
		_, err := n.Submit(t.Context(), Declaration{RuntimeName: "cluster.Add"}, key, "p")
		var ce *continuity.Error
		if !errors.As(err, &ce) || ce.Reason != continuity.ReasonRequestKeyReserved {
			t.Fatalf("Submit(%q) = %v, want request_key_reserved", key, err)
		}
	}
}

// Minted keys are 128 random bits, never a sequence a client could guess.
func TestMintedRouteKeysAreRandom(t *testing.T) {
	n := standalone(t, Config{})
	shape := regexp.MustCompile(`^http-route::cluster\.SessionThing::[0-9a-f]{32}$`)
	seen := map[string]bool{}
	var prev string
	for range 2000 {
		k, _ := n.mintRouteKey("cluster.SessionThing")
		if !shape.MatchString(k) || seen[k] || clientKeyed(k) {
			t.Fatalf("minted key %q (seen %v)", k, seen[k])
		}
		if prev != "" && commonPrefix(prev, k) > len("http-route::cluster.SessionThing::")+6 {
			t.Fatalf("consecutive minted keys %q and %q share a long prefix", prev, k)
		}
		seen[k], prev = true, k
	}
	if !clientKeyed(routeScope(n, "cluster.SessionThing", nil) + "x") {
		t.Fatal("a scoped client key is not recognised as one")
	}
}

func commonPrefix(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	return i
}

// FuzzRouteKeyHeaders sends requests with any Idempotency-Key bytes and
// lengths, any credential values, and repeated headers (values are split at
// newlines) to a clustered route, as caller A twice and then caller B, and
// checks the rules of the key path: a key is refused exactly when it is
// invalid (request_key_invalid) or reserved (request_key_reserved), without
// running the handler; an accepted key is scoped as
// http-route::<route>::caller-<tag>::<key>; A's retry is A's stored response
// without its Set-Cookie; B is answered from A's record only when B's
// credentials equal A's.
func FuzzRouteKeyHeaders(f *testing.F) {
	f.Add("order-42", "Bearer alice", "Bearer bob", "")
	f.Add("order-42", "Bearer alice", "Bearer alice", "sid=1")
	f.Add("k\nk", "a", "b", "")
	f.Add("startup::cluster.Add", "", "", "")
	f.Add("http-route::cluster.SessionThing::0", "x", "y", "")
	f.Add(strings.Repeat("z", 255), "a\na", "a", "c=1\nc=2")
	f.Add("\x00\xff", "", "", "")
	n := standalone(f, Config{})
	route := n.For(routeSession)
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	f.Fuzz(func(t *testing.T, keys, authA, authB, cookie string) {
		hdrA := http.Header{"Authorization": split(authA), "Cookie": split(cookie)}
		hdrB := http.Header{"Authorization": split(authB), "Cookie": split(cookie)}
		with := func(h http.Header) http.Header {
			h = h.Clone()
			if ks := split(keys); ks != nil {
				h[HeaderIdempotencyKey] = ks
			}
			return h
		}
		before := sessionCalls.Load()
		a1 := serveRoute(route, "POST", "/f", "body", with(hdrA))

		ks := split(keys)
		var want continuity.Reason
		switch {
		case len(ks) > 1 || len(ks) == 1 && len(ks[0]) > 255 ||
			len(ks) == 1 && strings.ContainsFunc(ks[0], func(r rune) bool { return r < 0x21 || r > 0x7e }):
			want = continuity.ReasonRequestKeyInvalid
		case len(ks) == 1 && continuity.ReservedKey(ks[0]):
			want = continuity.ReasonRequestKeyReserved
		}
		if want != "" {
			if a1.Code != 400 || strings.TrimSpace(a1.Body.String()) != `{"error":"`+string(want)+`"}` || sessionCalls.Load() != before {
				t.Fatalf("keys %q: %d %s, want 400 %s without running the handler", keys, a1.Code, a1.Body, want)
			}
			return
		}
		if a1.Code != 200 {
			t.Fatalf("keys %q: %d %s", keys, a1.Code, a1.Body)
		}
		ck := ""
		if len(ks) == 1 {
			ck = ks[0]
		}
		key := a1.Header().Get(HeaderRequestKey)
		if ck == "" {
			if clientKeyed(key) || !strings.HasPrefix(key, "http-route::cluster.SessionThing::") {
				t.Fatalf("un-keyed request got key %q", key)
			}
			return
		}
		if scoped := routeScope(n, "cluster.SessionThing", hdrA); key != scoped+ck || !clientKeyed(key) ||
			!regexp.MustCompile(`^http-route::cluster\.SessionThing::caller-[0-9a-f]{32}::$`).MatchString(scoped) {
			t.Fatalf("key %q for client key %q under scope %q", key, ck, scoped)
		}
		a2 := serveRoute(route, "POST", "/f", "body", with(hdrA))
		if a2.Code != 200 || a2.Body.String() != a1.Body.String() || a2.Header().Get("Set-Cookie") != "" || a2.Header().Get(HeaderRequestKey) != key {
			t.Fatalf("A's retry: %d %v %s, first %v %s", a2.Code, a2.Header(), a2.Body, a1.Header(), a1.Body)
		}
		b := serveRoute(route, "POST", "/f", "body", with(hdrB))
		same := strings.Join(split(authA), "\n") == strings.Join(split(authB), "\n")
		if b.Code != 200 || (b.Body.String() == a1.Body.String()) != same || (b.Header().Get(HeaderRequestKey) == key) != same {
			t.Fatalf("B (same credentials %v): %d %v %s; A %v %s", same, b.Code, b.Header(), b.Body, a1.Header(), a1.Body)
		}
	})
}

// BenchThing is the handler of the key-scoping benchmark: a small answer.
func BenchThing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

var routeBench = Clustered(1, BenchThing)

// BenchmarkKeyedRouteCredentials serves keyed Clustered(1) requests on a
// cluster-mode node alone (every record local, nothing replicated), with and
// without credential headers: the difference is what hashing a caller's
// Authorization and Cookie into the key scope costs a request. Every request
// has a new key, so none is a replay.
func BenchmarkKeyedRouteCredentials(b *testing.B) {
	port := meshtest.FreePort(b)
	n, err := Start(Config{
		Mode: ModeCluster, Cookie: "bench-cookie-0123456789abcdef0123456789abcdef", DiscoverySeed: "localhost",
		ClusterPort: port, NodeName: NodeName{Name: "alone", Host: "127.0.0.1", Port: port},
		StateDir: b.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	route := n.For(routeBench)
	for _, c := range []struct {
		name string
		hdr  http.Header
	}{
		{"no-credentials", http.Header{}},
		{"credentials", http.Header{
			"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"},
			"Cookie":        {"session=6f1c2d3e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978; theme=dark"},
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			prefix := fmt.Sprintf("bench-%s-%d-%d-", c.name, time.Now().UnixNano(), b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for j := range b.N {
				req := httptest.NewRequest(http.MethodGet, "/bench", nil)
				for k, vs := range c.hdr {
					req.Header[k] = vs
				}
				req.Header[HeaderIdempotencyKey] = []string{prefix + strconv.Itoa(j)}
				w := httptest.NewRecorder()
				route.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("HTTP %d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkScopedRouteKey is the key-scoping hash alone: the request key of
// a keyed request whose caller sends a bearer token and a session cookie.
func BenchmarkScopedRouteKey(b *testing.B) {
	n := standalone(b, Config{})
	h := http.Header{
		"Authorization": {"Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"},
		"Cookie":        {"session=6f1c2d3e4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6978; theme=dark"},
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = n.scopedRouteKey("cluster.BenchThing", defaultKeyScope, h, "order-42")
	}
}
