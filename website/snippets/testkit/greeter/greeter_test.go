package greeter_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/meshtest/clustertest"
	"meshgo.dev/mesh/website/snippets/testkit/greeter"
)

// #region pair
// A primary and a standby in the test's process: a count-2 route called on
// the standby is mirrored to both nodes; when the primary is killed the
// standby takes over, refuses count-2 requests while it has no peer, and
// serves them again once the old primary is back, fenced to standby.
func TestGreetAcrossFailover(t *testing.T) {
	pair := clustertest.StartPair(t)
	srv := pair.Standby.Serve(greeter.Routes())

	resp, body := call(t, "GET", srv.URL+"/greet/ada")
	if resp.StatusCode != http.StatusOK || body != "hello ada (epoch 0)\n" {
		t.Fatalf("GET /greet/ada = %d %q", resp.StatusCode, body)
	}
	key := resp.Header.Get(mesh.HeaderRequestKey)
	for _, n := range []*clustertest.Node{pair.Primary, pair.Standby} {
		rec := n.WaitRecord(key, mesh.PhaseCompleted)
		if rec.ReplicaStatus != mesh.ReplicaMirrored {
			t.Errorf("%s: replica status %s, want mirrored", n.Name(), rec.ReplicaStatus)
		}
	}

	pair.Primary.Kill()
	pair.Standby.WaitRole(mesh.RolePrimary, 1)
	resp, body = call(t, "GET", srv.URL+"/greet/ada")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "replica_required_unavailable") {
		t.Fatalf("GET /greet/ada on the lone survivor = %d %q, want 503 replica_required_unavailable", resp.StatusCode, body)
	}

	pair.Primary.Restart()
	pair.Primary.WaitRole(mesh.RoleStandby, 1) // the higher epoch won
	pair.WaitLinked()
	resp, body = call(t, "GET", srv.URL+"/greet/ada")
	if resp.StatusCode != http.StatusOK || body != "hello ada (epoch 1)\n" {
		t.Fatalf("GET /greet/ada after the rejoin = %d %q", resp.StatusCode, body)
	}
}

// #endregion pair

// #region standalone
// One standalone node: typed work runs once per key, and its output is
// stored on the record.
func TestCountRunsOncePerWord(t *testing.T) {
	node := clustertest.Standalone(t)
	srv := node.Serve(greeter.Routes())

	for range 2 {
		resp, body := call(t, "POST", srv.URL+"/count/mesh")
		var got greeter.Tally
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.Letters != 4 {
			t.Fatalf("POST /count/mesh = %d %q", resp.StatusCode, body)
		}
	}
	rec := node.WaitRecord("count::mesh", mesh.PhaseCompleted)
	if rec.AttemptID() != "attempt-0" {
		t.Errorf("the second count ran the work again: %s", rec.AttemptID())
	}
}

// #endregion standalone

// #region partition
// A partition: the standby promotes on its side while the primary carries
// on alone on its own; at heal the higher epoch wins.
func TestPartitionThenHeal(t *testing.T) {
	pair := clustertest.StartPair(t)
	pair.Partition()
	pair.Standby.WaitRole(mesh.RolePrimary, 1)
	if role, epoch := pair.Primary.Role(); role != mesh.RolePrimary || epoch != 0 {
		t.Fatalf("primary during the partition: %s at epoch %d", role, epoch)
	}
	pair.Heal()
	pair.Primary.WaitRole(mesh.RoleStandby, 1)
	pair.WaitLinked()
}

// #endregion partition

func call(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
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
	return resp, string(b)
}
