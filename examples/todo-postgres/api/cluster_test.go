package api

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/meshtest/clustertest"

	"todo-postgres/ratelimit"
	"todo-postgres/work"
)

// The tests below run the real router (mesh.Clustered routes, typed work)
// on an in-process primary/standby pair from meshtest/clustertest, over an
// in-memory store.

// clusterStore is the store behind clusterRouter. The runtime finds a
// clustered route by its runtime name, so the first *Todos registered serves
// every run of these tests: build the router once and reset the store.
var (
	clusterStore  = &memStore{}
	clusterRouter = sync.OnceValue(func() http.Handler {
		return NewRouter(NewTodos(clusterStore, log.New(io.Discard, "", 0)), Health(testConfig), ratelimit.New(time.Hour, 1000))
	})
)

func clusterServer(t *testing.T, n *clustertest.Node) string {
	t.Helper()
	clusterStore.mu.Lock()
	clusterStore.todos, clusterStore.clears, clusterStore.err = nil, 0, nil
	clusterStore.mu.Unlock()
	work.Use(clusterStore)
	t.Cleanup(func() { work.Use(nil) })
	return n.Serve(clusterRouter()).URL
}

// call sends a request with body; a body starting with "key:" is sent empty
// with the rest as its Idempotency-Key.
func call(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	idempotencyKey, keyed := strings.CutPrefix(body, "key:")
	if keyed {
		body = ""
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if idempotencyKey != "" {
		req.Header.Set(mesh.HeaderIdempotencyKey, idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, strings.TrimSpace(string(b))
}

// Reads through the standby are clustered routes with a record; clearing the
// completed todos runs as typed work once per Idempotency-Key, its report
// stored on both nodes; after the primary is killed, the standby takes over
// and keeps serving both.
func TestClusteredOnAPair(t *testing.T) {
	pair := clustertest.StartPair(t)
	base := clusterServer(t, pair.Standby)
	for i := range 3 {
		resp, body := call(t, "POST", base+"/todos", fmt.Sprintf(`{"title":"todo %d"}`, i))
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /todos = %d %s", resp.StatusCode, body)
		}
		if i < 2 {
			id := decode[todoJSON](t, body).ID
			if resp, body := call(t, "PUT", base+"/todos/"+id, ""); resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT = %d %s", resp.StatusCode, body)
			}
		}
	}

	resp, body := call(t, "GET", base+"/todos", "")
	key := resp.Header.Get(mesh.HeaderRequestKey)
	if resp.StatusCode != http.StatusOK || len(decode[[]todoJSON](t, body)) != 3 || !strings.HasPrefix(key, "http-route::api.Todos.List::") {
		t.Fatalf("GET /todos = %d %s (key %q), want the 3 todos and a route request key", resp.StatusCode, body, key)
	}
	if rec := pair.Standby.WaitRecord(key, mesh.PhaseCompleted); rec.IngressNode != pair.Standby.Name() || rec.ReplicationCount != 1 {
		t.Fatalf("route record %+v, want ingress on the standby, count 1", rec)
	}

	var first clearJSON
	for i, want := range []string{mesh.OutcomeCreated, mesh.OutcomeDuplicate} {
		resp, body := call(t, "POST", base+"/todos/clear-completed", "key:nightly-1")
		got := decode[clearJSON](t, body)
		if resp.StatusCode != http.StatusOK || got.Outcome != want || got.Deleted != 2 || got.Remaining != 1 || got.RequestKey != "clear-completed::nightly-1" {
			t.Fatalf("clear #%d = %d %s, want 200 %s, 2 deleted, 1 remaining", i+1, resp.StatusCode, body, want)
		}
		if i == 0 {
			first = got
		} else if got.Outcome = first.Outcome; got != first {
			t.Fatalf("the retry's report %+v differs from the first %+v", got, first)
		}
	}
	if clusterStore.clears != 1 {
		t.Fatalf("the store was cleared %d times, want once: the retry must read the stored report", clusterStore.clears)
	}
	for _, n := range []*clustertest.Node{pair.Primary, pair.Standby} {
		if rec := n.WaitRecord("clear-completed::nightly-1", mesh.PhaseCompleted); rec.RuntimeName != "work.ClearCompleted" {
			t.Fatalf("record on %s: %+v", n.Name(), rec)
		}
	}

	pair.Primary.Kill()
	pair.Standby.WaitRole(mesh.RolePrimary, 1)
	if resp, body := call(t, "GET", base+"/todos", ""); resp.StatusCode != http.StatusOK || len(decode[[]todoJSON](t, body)) != 1 {
		t.Fatalf("GET /todos on the survivor = %d %s", resp.StatusCode, body)
	}
	resp, body = call(t, "POST", base+"/todos/clear-completed", "")
	if got := decode[clearJSON](t, body); resp.StatusCode != http.StatusOK || got.Outcome != mesh.OutcomeCreated || got.Deleted != 0 || got.Remaining != 1 {
		t.Fatalf("clear on the survivor = %d %s, want 200, nothing left to delete", resp.StatusCode, body)
	}
}

func TestClearCompletedRefusesBadKeys(t *testing.T) {
	h := newServer(&memStore{}, 100, io.Discard)
	for _, key := range []string{"has space", "slash/no", strings.Repeat("k", 129), "ü"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/todos/clear-completed", nil)
		req.Header.Set(mesh.HeaderIdempotencyKey, key)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || strings.TrimSpace(rec.Body.String()) != `{"error":"invalid Idempotency-Key"}` {
			t.Errorf("Idempotency-Key %q: %d %s, want 400", key, rec.Code, rec.Body)
		}
	}
}
