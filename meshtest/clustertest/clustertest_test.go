package clustertest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/meshtest/clustertest"
)

// Where answers with the node that ran the request.
func Where(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	io.WriteString(w, id.RequestKey)
}

// Double is typed work, mirrored (count 2).
func Double(ctx context.Context, n int) (int, error) { return 2 * n, nil }

var _ = mesh.Work(Double)

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /where", mesh.Clustered(1, Where))
	return mux
}

func get(ctx context.Context, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// Typed work submitted on the standby of a pair is mirrored to the primary;
// both nodes hold its result.
func TestPairTypedWork(t *testing.T) {
	pair := clustertest.StartPair(t)
	h, err := mesh.SubmitWork(t.Context(), pair.Standby.Mesh(), Double, "double-21", 21)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Result(t.Context())
	if err != nil || got != 42 {
		t.Fatalf("Result = %d, %v; want 42", got, err)
	}
	for _, n := range []*clustertest.Node{pair.Primary, pair.Standby} {
		if rec := n.WaitRecord("double-21", mesh.PhaseCompleted); rec.ReplicationCount != 2 || rec.ReplicaStatus != mesh.ReplicaMirrored {
			t.Errorf("%s: %+v, want a mirrored count-2 record", n.Name(), rec)
		}
	}
}

// A frozen primary: the standby promotes; a request to the frozen node
// waits for Resume, and is then refused because the resumed node cannot
// vouch for its authority (it quarantines itself, as a process resumed
// after SIGSTOP does); the old primary is then fenced to standby.
func TestFreezeAndResume(t *testing.T) {
	pair := clustertest.StartPair(t)
	srv := pair.Primary.Serve(routes())
	pair.Primary.Freeze()
	pair.Standby.WaitRole(mesh.RolePrimary, 1)

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		status, body, err := get(context.Background(), srv.URL+"/where")
		answered <- answer{status, body, err}
	}()
	select {
	case a := <-answered:
		t.Fatalf("a request to the frozen node was answered: %+v", a)
	case <-time.After(200 * time.Millisecond):
	}
	pair.Primary.Resume()
	if a := <-answered; a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "authority_unconfirmed_after_pause") {
		t.Fatalf("request held by the freeze = %+v, want 503 authority_unconfirmed_after_pause", a)
	}
	pair.Primary.WaitRole(mesh.RoleStandby, 1)
	pair.WaitLinked()
}

// A killed node's server drops the connection; Restart brings it back.
func TestKillDropsRequestsAndRestartServes(t *testing.T) {
	pair := clustertest.StartPair(t)
	srv := pair.Standby.Serve(routes())
	if status, key, err := get(t.Context(), srv.URL+"/where"); err != nil || status != http.StatusOK || key == "" {
		t.Fatalf("GET /where = %d %q %v", status, key, err)
	}
	pair.Standby.Kill()
	if _, _, err := get(t.Context(), srv.URL+"/where"); err == nil {
		t.Fatal("a killed node answered a request")
	}
	pair.Standby.Restart()
	pair.WaitLinked()
	status, key, err := get(t.Context(), srv.URL+"/where")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /where after restart = %d %v", status, err)
	}
	if rec := pair.Standby.WaitRecord(key, mesh.PhaseCompleted); rec.IngressNode != pair.Standby.Name() {
		t.Errorf("ingress %s, want the restarted standby", rec.IngressNode)
	}
	if role, epoch := pair.Primary.Role(); role != mesh.RolePrimary || epoch != 0 {
		t.Errorf("primary is %s at epoch %d after its standby's restart", role, epoch)
	}
}

// A standalone node serves clustered routes and keeps their records.
func TestStandalone(t *testing.T) {
	node := clustertest.Standalone(t)
	rec := httptestRecorder(t, node.Handler(routes()), "/where")
	if got := node.WaitRecord(rec, mesh.PhaseCompleted); got.ExecutionNode != mesh.StandaloneNodeName {
		t.Fatalf("record %+v, want it run on the standalone node", got)
	}
	if node.Mesh() == mesh.Default() {
		t.Fatal("the kit's standalone node is the process's default node")
	}
}

func httptestRecorder(t *testing.T, h http.Handler, path string) string {
	t.Helper()
	w := &recorder{header: http.Header{}}
	r, err := http.NewRequestWithContext(t.Context(), "GET", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.ServeHTTP(w, r)
	if w.status != 0 && w.status != http.StatusOK {
		t.Fatalf("GET %s = %d", path, w.status)
	}
	key := w.header.Get(mesh.HeaderRequestKey)
	if key == "" {
		t.Fatal(errors.New("no request key header"))
	}
	return key
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// Pairs in parallel tests are independent: each has its own network, and
// typed work submitted on one is unknown to the others.
func TestParallelPairs(t *testing.T) {
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			pair := clustertest.StartPair(t)
			key := "parallel-double"
			h, err := mesh.SubmitWork(t.Context(), pair.Primary.Mesh(), Double, key, i)
			if err != nil || h.Outcome() != mesh.OutcomeCreated {
				t.Fatalf("submit on pair %d: %v, %v; want created (pairs must not share records)", i, h, err)
			}
			if got, err := h.Result(t.Context()); err != nil || got != 2*i {
				t.Fatalf("Result = %d, %v; want %d", got, err, 2*i)
			}
			pair.Standby.WaitRecord(key, mesh.PhaseCompleted)
		})
	}
}
