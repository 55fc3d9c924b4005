package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	meshcookie "meshgo.dev/mesh/internal/cookie"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/meshtest"
)

const clusterTestCookie = "meshc-cluster-7c1d-Yt9Bv3Mx7Cz1Pd5R8Kq2Wn"

// clusterSource is a fixed operator.Source for the fake node.
type clusterSource struct {
	local   string
	records []continuity.Record
	diag    continuity.Snapshot

	mu   sync.Mutex
	view *operator.StatusView // when set, the status to answer

	switchErr error // when set, the refusal of a switchover
}

// setView makes the node answer v to status queries.
func (s *clusterSource) setView(v operator.StatusView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.view = &v
}

func (s *clusterSource) Status() operator.StatusView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.view != nil {
		return *s.view
	}
	return operator.StatusView{
		LocalNode: s.local, PeerNodes: []string{"standby@[::1]:4370"},
		Role: continuity.RolePrimary, Epoch: 3, Health: continuity.HealthHealthy,
	}
}

func (s *clusterSource) Records() []continuity.Record { return s.records }

func (s *clusterSource) Record(key string) (continuity.Record, bool) {
	for _, r := range s.records {
		if r.RequestKey == key {
			return r, true
		}
	}
	return continuity.Record{}, false
}

func (s *clusterSource) Diagnostics() continuity.Snapshot { return s.diag }

// Switchover answers a switchover from s.local to to (the standby when
// empty), or fails with s.switchErr.
func (s *clusterSource) Switchover(to string) (operator.SwitchoverView, error) {
	if s.switchErr != nil {
		return operator.SwitchoverView{}, s.switchErr
	}
	if to == "" {
		to = "standby@[::1]:4370"
	}
	return operator.SwitchoverView{From: s.local, To: to, SafetyMode: "peer", PreviousEpoch: 3, Epoch: 4, Duration: 9 * time.Millisecond,
		Steps: []operator.SwitchoverStepView{{Step: "checked"}, {Step: "promoted", Elapsed: 8 * time.Millisecond, Detail: to + " is primary at epoch 4"}}}, nil
}

func clusterRecords(n int) []continuity.Record {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	out := make([]continuity.Record, n)
	for i := range out {
		out[i] = continuity.Record{
			RequestKey: fmt.Sprintf("key-%05d", n-1-i), PayloadHash: "hash", Attempt: uint64(i),
			Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
			IngressNode: "primary@127.0.0.1:4370", OwnerNode: "primary@127.0.0.1:4370",
			ReplicationCount: 1, ReplicaStatus: continuity.ReplicaUnassigned,
			Role: continuity.RolePrimary, Epoch: 3, Health: continuity.HealthLocalOnly,
			ExecutionNode: "primary@127.0.0.1:4370", FellBackLocally: true, RuntimeName: "work.Add",
			SubmittedAt: at, CompletedAt: at.Add(time.Millisecond),
		}
	}
	return out
}

// startClusterNode runs an in-process node on a loopback port: TLS plus the
// node side of the handshake, then operator.Serve over src. It returns the
// node name to pass to meshc.
func startClusterNode(t *testing.T, src *clusterSource) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := handshake.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	name := "primary@127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	src.local = name
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				res, err := handshake.Server(ctx, raw, handshake.Config{
					LocalName: name, Kind: handshake.KindNode, Cookie: []byte(clusterTestCookie),
					Certificate: cert, Timeout: 5 * time.Second,
				})
				if err != nil {
					return
				}
				defer res.Conn.Close()
				operator.Serve(res.Conn, src, time.Minute)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
	})
	return name
}

// silentNode accepts TCP connections and never answers.
func silentNode(t *testing.T) string { return "silent@" + meshtest.SilentListener(t) }

func closedNode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "gone@" + addr
}

// env is a fake environment for runClusterEnv.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

var cookieEnv = env{"MESH_CLUSTER_COOKIE": clusterTestCookie}

// meshcCluster runs `meshc cluster <args>` and returns stdout and the error.
// It fails the test if the cookie shows up in either.
func meshcCluster(t *testing.T, e env, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := runClusterEnv(t.Context(), args, &stdout, &stderr, e.lookup)
	out := stdout.String()
	for _, secret := range []string{clusterTestCookie, "wrong-cookie-0b9e"} {
		if strings.Contains(out, secret) || strings.Contains(stderr.String(), secret) || (err != nil && strings.Contains(err.Error(), secret)) {
			t.Fatalf("the cookie appears in the output of %q: stdout %q, stderr %q, error %v", args, out, stderr.String(), err)
		}
	}
	argvCookie := slices.ContainsFunc(args, func(a string) bool { return a == "--cookie" || strings.HasPrefix(a, "--cookie=") })
	warned := strings.Contains(stderr.String(), "warning: --cookie puts the cluster cookie on the command line")
	if warned && !argvCookie {
		t.Fatalf("stderr %q: warning printed without --cookie on argv", stderr.String())
	}
	if argvCookie && err == nil && !warned {
		t.Fatalf("stderr %q: no warning for --cookie on argv", stderr.String())
	}
	return out, err
}

func mustRun(t *testing.T, e env, args ...string) string {
	t.Helper()
	out, err := meshcCluster(t, e, args...)
	if err != nil {
		t.Fatalf("meshc cluster %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func decodeJSON(t *testing.T, out string, v any) {
	t.Helper()
	if !strings.HasSuffix(out, "}\n") || !strings.HasPrefix(out, "{\n  \"") {
		t.Fatalf("output is not 2-space indented JSON with a trailing newline:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
}

func TestClusterStatus(t *testing.T) {
	node := startClusterNode(t, &clusterSource{})

	var s operator.Status
	decodeJSON(t, mustRun(t, cookieEnv, "status", node, "--json"), &s)
	if s.Target != node || s.Membership.LocalNode != node || s.Authority.ClusterRole != continuity.RolePrimary ||
		s.Authority.PromotionEpoch != 3 || len(s.Membership.PeerNodes) != 1 || len(s.Membership.Nodes) != 2 {
		t.Errorf("status = %+v", s)
	}

	text := mustRun(t, cookieEnv, "status", "--cookie", clusterTestCookie, node)
	for _, want := range []string{
		"target:             " + node + "\n",
		"peer_nodes:\n  - standby@[::1]:4370\n",
		"cluster_role:       primary\n",
		"promotion_epoch:    3\n",
		"replication_health: healthy\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestClusterContinuity(t *testing.T) {
	src := &clusterSource{records: clusterRecords(10_000)}
	node := startClusterNode(t, src)

	t.Run("whole list of 10000 records", func(t *testing.T) {
		var l operator.ContinuityList
		decodeJSON(t, mustRun(t, cookieEnv, "continuity", node, "--json", "--timeout-ms", "60000"), &l)
		if len(l.Records) != 10_000 || l.TotalRecords != 10_000 || l.Truncated || l.Target != node {
			t.Fatalf("records=%d total=%d truncated=%v target=%q", len(l.Records), l.TotalRecords, l.Truncated, l.Target)
		}
		if l.Records[0].RequestKey != "key-00000" || l.Records[9999].RequestKey != "key-09999" {
			t.Errorf("records are not sorted: first %q last %q", l.Records[0].RequestKey, l.Records[9999].RequestKey)
		}
	})
	t.Run("limited list, flags first", func(t *testing.T) {
		var l operator.ContinuityList
		decodeJSON(t, mustRun(t, cookieEnv, "continuity", "--limit", "5", "--json", node), &l)
		if len(l.Records) != 5 || l.TotalRecords != 10_000 || !l.Truncated {
			t.Fatalf("records=%d total=%d truncated=%v", len(l.Records), l.TotalRecords, l.Truncated)
		}
	})
	t.Run("limited list text", func(t *testing.T) {
		text := mustRun(t, cookieEnv, "continuity", node, "--limit=2")
		want := "target:        " + node + "\ntotal_records: 10000\ntruncated:     true\nrecords:\n- request_key=key-00000 attempt_id=attempt-9999 phase=completed"
		if !strings.HasPrefix(text, want) || strings.Count(text, "\n- ") != 2 {
			t.Errorf("text output:\n%s\nwant prefix:\n%s", text, want)
		}
	})
	t.Run("one record", func(t *testing.T) {
		var c operator.ContinuityRecord
		decodeJSON(t, mustRun(t, cookieEnv, "continuity", "--json", node, "key-00042"), &c)
		if c.Target != node || c.Record.RequestKey != "key-00042" || c.Record.AttemptID != "attempt-9957" || c.Record.CompletedAt == nil {
			t.Errorf("record = %+v", c)
		}
		text := mustRun(t, cookieEnv, "continuity", node, "key-00042")
		for _, want := range []string{
			"request_key:                   key-00042\n",
			"declared_handler_runtime_name: work.Add\n",
			"replication_count:             1\n",
			"completed_at:                  2025-01-02T03:04:05.001000006Z\n",
		} {
			if !strings.Contains(text, want) {
				t.Errorf("text output lacks %q:\n%s", want, text)
			}
		}
		if strings.Contains(text, "payload_hash") {
			t.Errorf("text output shows payload_hash:\n%s", text)
		}
	})
}

func TestClusterDiagnostics(t *testing.T) {
	ring := continuity.NewDiagnostics(4)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for i := range 6 {
		ring.Add(continuity.Entry{
			Transition: "submit", RequestKey: fmt.Sprintf("k%d", i), ClusterRole: continuity.RolePrimary,
			Metadata: []continuity.KV{{Key: "phase", Value: "submitted"}}, Time: at,
		})
	}
	node := startClusterNode(t, &clusterSource{diag: ring.Snapshot()})

	var d operator.Diagnostics
	decodeJSON(t, mustRun(t, cookieEnv, "diagnostics", node, "--json", "--limit", "2"), &d)
	if len(d.Entries) != 2 || d.Entries[0].Sequence != 5 || d.Entries[1].Sequence != 6 ||
		d.TotalEntries != 4 || d.DroppedEntries != 2 || d.BufferCapacity != 4 || !d.Truncated || d.Target != node {
		t.Errorf("diagnostics = %+v", d)
	}
	if d.Entries[0].ExecutionNode != nil || d.Entries[0].Metadata[0] != (operator.MetadataPair{Key: "phase", Value: "submitted"}) {
		t.Errorf("entry = %+v", d.Entries[0])
	}

	text := mustRun(t, cookieEnv, "diagnostics", node)
	for _, want := range []string{
		"total_entries:   4\n", "dropped_entries: 2\n", "buffer_capacity: 4\n", "truncated:       true\n", "entries:\n",
		"- seq=3 transition=submit request_key=k2 ", "\n    phase=submitted\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestClusterErrors(t *testing.T) {
	node := startClusterNode(t, &clusterSource{records: clusterRecords(3)})
	silent := silentNode(t)
	closed := closedNode(t)
	_, closedAddr, _ := strings.Cut(closed, "@")

	tests := []struct {
		name string
		env  env
		args []string
		want []string // substrings of the error, in order
		code int      // the exit code main gives the error
	}{
		{"unreachable port", cookieEnv, []string{"status", closed},
			[]string{"operator query status target " + closed + " unavailable: dial tcp " + closedAddr, "connection refused"}, 3},
		{"wrong cookie", cookieEnv, []string{"status", node, "--cookie", "wrong-cookie-0b9e"},
			[]string{"operator query status target " + node + " unavailable: authentication failed: cluster cookie mismatch"}, 4},
		{"bad target syntax", cookieEnv, []string{"status", "nodename-without-at"},
			[]string{"operator query status target nodename-without-at invalid: invalid node name 'nodename-without-at': missing '@' separator"}, 2},
		{"timeout", cookieEnv, []string{"diagnostics", silent, "--timeout-ms", "200"},
			[]string{"operator query diagnostics target " + silent + " timed out after 200ms"}, 3},
		{"unknown key", cookieEnv, []string{"continuity", node, "no-such-key"},
			[]string{"operator query continuity_lookup target " + node + " rejected: request_key_not_found"}, 5},
		{"empty key", env{}, []string{"continuity", closed, ""},
			[]string{"operator query continuity_lookup invalid: request_key_missing"}, 2},
		{"limit with key", env{}, []string{"continuity", closed, "k", "--limit", "3"},
			[]string{"meshc cluster continuity does not accept --limit when request_key is provided"}, 2},
		{"blank cookie flag", cookieEnv, []string{"status", node, "--cookie", "  "},
			[]string{"meshc cluster: --cookie must not be blank"}, 2},
		{"empty cookie flag", cookieEnv, []string{"status", node, "--cookie="},
			[]string{"meshc cluster: --cookie must not be blank"}, 2},
		{"cookie env unset", env{}, []string{"status", node},
			[]string{"meshc cluster: MESH_CLUSTER_COOKIE is required unless --cookie or --cookie-file is provided"}, 2},
		{"cookie and cookie file flags", cookieEnv, []string{"status", node, "--cookie", clusterTestCookie, "--cookie-file", "/x"},
			[]string{"meshc cluster: use only one of --cookie and --cookie-file"}, 2},
		{"cookie env and file env", env{"MESH_CLUSTER_COOKIE": clusterTestCookie, "MESH_CLUSTER_COOKIE_FILE": "/x"}, []string{"status", node},
			[]string{"meshc cluster: set only one of MESH_CLUSTER_COOKIE and MESH_CLUSTER_COOKIE_FILE"}, 2},
		{"missing cookie file", env{}, []string{"status", node, "--cookie-file", "/nonexistent/cookie"},
			[]string{"meshc cluster: --cookie-file: open /nonexistent/cookie"}, 2},
		{"cookie with an argument", env{}, []string{"cookie", "extra"},
			[]string{"meshc cluster cookie: unexpected argument \"extra\""}, 2},
		{"cookie env blank", env{"MESH_CLUSTER_COOKIE": " \t"}, []string{"status", node},
			[]string{"meshc cluster: MESH_CLUSTER_COOKIE must not be blank"}, 2},
		{"zero timeout", cookieEnv, []string{"status", node, "--timeout-ms", "0"},
			[]string{"meshc cluster: --timeout-ms must be a positive integer, got 0"}, 2},
		{"negative limit", cookieEnv, []string{"diagnostics", node, "--limit", "-1"},
			[]string{"meshc cluster diagnostics: invalid value \"-1\" for flag -limit"}, 2},
		{"status has no --limit", cookieEnv, []string{"status", node, "--limit", "1"},
			[]string{"meshc cluster status: flag provided but not defined: -limit"}, 2},
		{"missing node", cookieEnv, []string{"status", "--json"},
			[]string{"meshc cluster status: missing <node>"}, 2},
		{"extra argument", cookieEnv, []string{"diagnostics", node, "extra"},
			[]string{"meshc cluster diagnostics: unexpected argument \"extra\""}, 2},
		{"unknown subcommand", cookieEnv, []string{"members", node},
			[]string{"meshc cluster: unknown subcommand \"members\""}, 2},
		{"no subcommand", cookieEnv, nil,
			[]string{"meshc cluster: a subcommand is required"}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := meshcCluster(t, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", out)
			}
			if out != "" {
				t.Errorf("stdout is not empty on error: %q", out)
			}
			if got := exitCode(err); got != tc.code {
				t.Errorf("exit code %d, want %d (error %v)", got, tc.code, err)
			}
			msg := err.Error()
			rest := msg
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("error %q lacks %q", msg, w)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestClusterCookieSources checks that the flag wins over the environment and
// that both are trimmed.
func TestClusterCookieSources(t *testing.T) {
	node := startClusterNode(t, &clusterSource{})
	mustRun(t, env{"MESH_CLUSTER_COOKIE": "  " + clusterTestCookie + "\n"}, "status", node)
	mustRun(t, env{"MESH_CLUSTER_COOKIE": "wrong-cookie-0b9e"}, "status", node, "--cookie", " "+clusterTestCookie+" ")
}

// TestClusterCookieFiles checks --cookie-file and MESH_CLUSTER_COOKIE_FILE,
// and that a cookie file others can read is refused.
func TestClusterCookieFiles(t *testing.T) {
	node := startClusterNode(t, &clusterSource{})
	dir := t.TempDir()
	private := filepath.Join(dir, "cookie")
	if err := os.WriteFile(private, []byte(clusterTestCookie+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(dir, "shared")
	if err := os.WriteFile(shared, []byte(clusterTestCookie), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env{}, "status", node, "--cookie-file", private)
	mustRun(t, env{"MESH_CLUSTER_COOKIE_FILE": private}, "status", node)
	mustRun(t, env{"MESH_CLUSTER_COOKIE": "wrong-cookie-0b9e"}, "status", node, "--cookie-file", private)
	for _, args := range [][]string{{"status", node, "--cookie-file", shared}} {
		_, err := meshcCluster(t, env{}, args...)
		if err == nil || !strings.Contains(err.Error(), "readable or writable by other users (mode 0644)") {
			t.Fatalf("err = %v, want a group/world-readable cookie file refused", err)
		}
	}
	_, err := meshcCluster(t, env{"MESH_CLUSTER_COOKIE_FILE": shared}, "status", node)
	if err == nil || !strings.Contains(err.Error(), "MESH_CLUSTER_COOKIE_FILE: "+shared+" is readable") {
		t.Fatalf("err = %v, want the env cookie file refused", err)
	}
}

// TestClusterCookiePrintsFreshCookies checks that `meshc cluster cookie`
// prints one strong cookie a line, different each time.
func TestClusterCookiePrintsFreshCookies(t *testing.T) {
	a := mustRun(t, env{}, "cookie")
	b := mustRun(t, env{}, "cookie")
	if !strings.HasSuffix(a, "\n") || strings.Count(a, "\n") != 1 {
		t.Fatalf("output %q is not one line", a)
	}
	if a == b {
		t.Fatalf("two runs printed the same cookie")
	}
	if c := strings.TrimSpace(a); len(c) != 43 {
		t.Fatalf("cookie %q is %d characters, want 43 (32 random bytes, base64url)", c, len(c))
	}
	if err := meshcookie.Check("printed", strings.TrimSpace(a)); err != nil {
		t.Fatalf("the printed cookie is refused by the node's check: %v", err)
	}
}

func TestClusterDoubleDashEndsFlags(t *testing.T) {
	node := startClusterNode(t, &clusterSource{records: clusterRecords(1)})
	_, err := meshcCluster(t, cookieEnv, "continuity", node, "--", "--json")
	if err == nil || !strings.Contains(err.Error(), "rejected: request_key_not_found") {
		t.Fatalf("err = %v, want --json looked up as a request key", err)
	}
}

func TestClusterHelp(t *testing.T) {
	for _, args := range [][]string{
		{"--help"},
		{"status", "--help"},
		{"continuity", "-h"},
		{"diagnostics", "node@127.0.0.1:1", "--help"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, err := meshcCluster(t, env{}, args...)
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("err = %v, want flag.ErrHelp", err)
			}
			if !strings.HasPrefix(out, "Usage: meshc cluster") {
				t.Errorf("help output:\n%s", out)
			}
			if len(args) > 1 && !strings.Contains(out, "-timeout-ms") {
				t.Errorf("help does not list --timeout-ms:\n%s", out)
			}
		})
	}
}

// TestClusterThroughDispatcher runs the command the way main does, reading
// the cookie from the real environment.
func TestClusterThroughDispatcher(t *testing.T) {
	node := startClusterNode(t, &clusterSource{})
	t.Setenv("MESH_CLUSTER_COOKIE", clusterTestCookie)
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"cluster", "status", node, "--json"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), `"target": "`+node+`"`) || stderr.Len() != 0 {
		t.Errorf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

func TestClusterSwitchover(t *testing.T) {
	node := startClusterNode(t, &clusterSource{local: "primary@127.0.0.1:4370"})
	var sw operator.Switchover
	decodeJSON(t, mustRun(t, cookieEnv, "switchover", node, "--to", "standby@127.0.0.1:4371", "--json"), &sw)
	if sw.Target != node || sw.To != "standby@127.0.0.1:4371" || sw.PreviousEpoch != 3 || sw.Epoch != 4 || len(sw.Steps) != 2 ||
		sw.Steps[1].ElapsedMS != 8 {
		t.Errorf("switchover = %+v", sw)
	}
	text := mustRun(t, cookieEnv, "switchover", node)
	for _, want := range []string{"to:             standby@[::1]:4370\n", "previous_epoch: 3\n", "epoch:          4\n",
		"steps:\n- step=checked elapsed_ms=0", "- step=promoted elapsed_ms=8 detail=\"standby@[::1]:4370 is primary at epoch 4\""} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}

	refusing := startClusterNode(t, &clusterSource{switchErr: errors.New("switchover_rejected:standby_not_caught_up")})
	_, err := meshcCluster(t, cookieEnv, "switchover", refusing)
	if err == nil || exitCode(err) != 1 || !strings.Contains(withNextStep(err).Error(),
		"operator query switchover target "+refusing+" rejected: switchover_rejected:standby_not_caught_up; "+stepSwitchoverNotCaughtUp) {
		t.Errorf("refused switchover: %v (exit %d)", withNextStep(err), exitCode(err))
	}
	_, err = meshcCluster(t, cookieEnv, "switchover", node, "--to", "no-at-sign")
	if err == nil || exitCode(err) != 2 || !strings.Contains(err.Error(), "--to: invalid node name") {
		t.Errorf("bad --to: %v (exit %d)", err, exitCode(err))
	}
	_, err = meshcCluster(t, cookieEnv, "status", node, "--to", "x@h:1")
	if err == nil || exitCode(err) != 2 {
		t.Errorf("--to on status: %v", err)
	}
}
