package chaos

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"
)

const (
	nodeA = "primary@127.0.0.1:4370"
	nodeB = "standby@[::1]:4370"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func routeOK(client int, node, kind, key string, ms int, attempt, execNode string) Op {
	body := `{"attempt":"` + attempt + `","epoch":0,"key":"` + key + `","kind":"` + kind + `","node":"` + execNode + `"}`
	return Op{Client: client, Node: node, Kind: kind, Key: key, Payload: "p-" + key, Start: at(ms), End: at(ms + 5),
		Status: 200, Body: body, BodyHash: hashOf(body), Attempt: attempt}
}

func record(node, key, phase, attempt, owner, exec, errText string) Record {
	role := "standby"
	if node == nodeA {
		role = "primary"
	}
	result := map[string]string{"submitted": "pending", "completed": "succeeded", "rejected": "rejected"}[phase]
	return Record{"request_key": key, "phase": phase, "result": result, "attempt_id": attempt, "owner_node": owner,
		"execution_node": exec, "error": errText, "cluster_role": role, "promotion_epoch": float64(1), "replication_count": float64(2)}
}

// both returns the same record as each node holds it.
func both(key, phase, attempt, owner, exec, errText string) map[string]Record {
	return map[string]Record{
		nodeA: record(nodeA, key, phase, attempt, owner, exec, errText),
		nodeB: record(nodeB, key, phase, attempt, owner, exec, errText),
	}
}

// clean is a history of a run that kept every promise: acknowledged
// routes and work, a replay, a refusal with a reason, a transport error
// from a killed node, a timeout from a frozen node, and work re-run under
// a new attempt after a failover.
func clean() History {
	h := History{HungBound: 8 * time.Second, Quiesced: true, Final: map[string][]Record{}}
	h.Ops = []Op{
		routeOK(1, nodeA, KindRoute2, "r2-1", 0, "attempt-1", nodeA),
		routeOK(2, nodeB, KindRoute2, "r2-1", 100, "attempt-1", nodeA), // a replay
		routeOK(3, nodeB, KindRoute1, "r1-1", 200, "attempt-2", nodeB),
		{Client: 4, Node: nodeA, Kind: KindWork, Key: "w-1", Payload: "p-w-1", Start: at(300), End: at(310), Status: 200,
			Outcome: "created", Phase: "submitted", Attempt: "attempt-3"},
		{Client: 4, Node: nodeB, Kind: KindWork, Key: "w-1", Payload: "p-w-1", Start: at(400), End: at(410), Status: 200,
			Outcome: "duplicate", Phase: "completed", Attempt: "attempt-3"},
		{Client: 5, Node: nodeA, Kind: KindRoute2, Key: "r2-2", Payload: "p", Start: at(500), End: at(510), Status: 503,
			Body: `{"error":"replica_required_unavailable"}`, Reason: "replica_required_unavailable"},
		{Client: 6, Node: nodeA, Kind: KindWork, Key: "w-2", Payload: "p", Start: at(600), End: at(610), Status: 200,
			Outcome: "created", Phase: "submitted", Attempt: "attempt-4"},
		{Client: 7, Node: nodeA, Kind: KindRoute1, Key: "r1-2", Start: at(1000), End: at(1001), Err: "connection refused"},
		{Client: 8, Node: nodeA, Kind: KindRoute2, Key: "r2-3", Start: at(2000), End: at(10000), Timeout: true},
	}
	h.Effects = []Effect{
		{Kind: KindWork, Key: "startup::soak.Apply", Attempt: "attempt-0", Node: nodeA, Time: at(-100)},
		{Kind: KindRoute2, Key: "r2-1", Attempt: "attempt-1", Node: nodeA, Time: at(2)},
		{Kind: KindRoute1, Key: "r1-1", Attempt: "attempt-2", Node: nodeB, Time: at(202)},
		{Kind: KindWork, Key: "w-1", Attempt: "attempt-3", Node: nodeA, Time: at(305)},
		{Kind: KindWork, Key: "w-2", Attempt: "attempt-4", Node: nodeA, Time: at(605)},
		{Kind: KindWork, Key: "w-2", Attempt: "attempt-5", Node: nodeB, Time: at(1500)}, // re-run after the kill
	}
	h.Status = []StatusObs{
		{Asked: at(-5), Time: at(0), Node: nodeA, Role: "primary", Epoch: 0, Peers: 1},
		{Asked: at(-5), Time: at(0), Node: nodeB, Role: "standby", Epoch: 0, Peers: 1},
		{Asked: at(1190), Time: at(1200), Node: nodeB, Role: "primary", Epoch: 1, Peers: 0},
		// Two overlapping queries of one node: the one answered last was
		// asked first and saw the earlier epoch. That is no decrease.
		{Asked: at(1100), Time: at(1300), Node: nodeB, Role: "standby", Epoch: 0, Peers: 0},
		{Asked: at(2990), Time: at(3000), Node: nodeA, Role: "standby", Epoch: 1, Peers: 1},
	}
	h.Faults = []Fault{
		{Kind: FaultKillPrimary, Node: nodeA, Start: at(700), End: at(2500), Reformed: true},
		{Kind: FaultFreezePrimary, Node: nodeA, Start: at(2600), End: at(5000), Reformed: true},
	}
	finals := []map[string]Record{
		both("startup::soak.Apply", "completed", "attempt-0", nodeA, nodeA, ""),
		both("r2-1", "completed", "attempt-1", nodeA, nodeA, ""),
		both("r1-1", "completed", "attempt-2", nodeB, nodeB, ""),
		both("w-1", "completed", "attempt-3", nodeA, nodeA, ""),
		both("r2-2", "rejected", "attempt-6", nodeA, "", "replica_required_unavailable"),
		both("w-2", "completed", "attempt-5", nodeB, nodeB, ""),
	}
	for _, f := range finals {
		for n, rec := range f {
			h.Final[n] = append(h.Final[n], rec)
		}
	}
	return h
}

// setFinal replaces the final record of key on node.
func setFinal(h *History, node, key string, mutate func(Record)) {
	for _, rec := range h.Final[node] {
		if rec.Str("request_key") == key {
			mutate(rec)
		}
	}
}

func TestCleanHistoryReportsNothing(t *testing.T) {
	r := Check(clean())
	if !r.OK() {
		t.Fatalf("violations in a clean history:\n%v", r.Violations)
	}
	if r.Acknowledged != 6 || r.ReRuns[KindWork] != 1 || r.ReRuns[KindRoute2] != 0 || r.TransportErrors != 1 || r.Refusals != 1 {
		t.Fatalf("figures: acknowledged %d, reruns %v, transport errors %d, refusals %d", r.Acknowledged, r.ReRuns, r.TransportErrors, r.Refusals)
	}
	if r.AckedKeys[KindRoute2] != 1 || r.AckedKeys[KindRoute1] != 1 || r.AckedKeys[KindWork] != 2 {
		t.Fatalf("acknowledged keys %v", r.AckedKeys)
	}
	if s := r.Summary(42); !strings.HasPrefix(s, "chaos summary: result=PASS ") || !strings.HasSuffix(s, " seed=42") {
		t.Fatalf("summary %q", s)
	}
}

func TestCheckerReportsEachViolation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		class  string
		key    string
		inject func(h *History)
	}{
		{"work acknowledged in progress, finally rejected", ClassLostAck, "work:w-1", func(h *History) {
			// The stale-duplicate sequence: a duplicate answered "submitted"
			// for a record both nodes finally hold rejected.
			h.Ops[4].Phase = "submitted"
			for _, n := range []string{nodeA, nodeB} {
				setFinal(h, n, "w-1", func(r Record) {
					r["phase"], r["result"], r["error"] = "rejected", "rejected", "replica_required_unavailable"
				})
			}
		}},
		{"acknowledged attempt discarded at heal", ClassLostAck, "work:w-2", func(h *History) {
			for _, n := range []string{nodeA, nodeB} {
				setFinal(h, n, "w-2", func(r Record) {
					r["phase"], r["result"], r["attempt_id"], r["error"] = "rejected", "rejected", "attempt-9", "replica_required_unavailable"
				})
			}
		}},
		{"route acknowledged, record completed under another attempt", ClassLostAck, "route1:r1-1", func(h *History) {
			for _, n := range []string{nodeA, nodeB} {
				setFinal(h, n, "r1-1", func(r Record) { r["attempt_id"] = "attempt-7" })
			}
			h.Effects = append(h.Effects, Effect{Kind: KindRoute1, Key: "r1-1", Attempt: "attempt-7", Node: nodeA, Time: at(900)})
		}},
		{"route acknowledged, execution missing from the side-effect log", ClassLostAck, "route2:r2-1", func(h *History) {
			h.Effects = h.Effects[:1+copy(h.Effects[1:], h.Effects[2:])]
		}},
		{"work completed under an attempt that never ran", ClassLostAck, "work:w-1", func(h *History) {
			for i, e := range h.Effects {
				if e.Key == "w-1" {
					h.Effects[i].Key = "w-other"
				}
			}
		}},
		{"same attempt executed twice", ClassDoubleExecution, "route1:r1-1", func(h *History) {
			h.Effects = append(h.Effects, Effect{Kind: KindRoute1, Key: "r1-1", Attempt: "attempt-2", Node: nodeA, Time: at(950)})
		}},
		{"replay with another body", ClassReplayMismatch, "route2:r2-1", func(h *History) {
			h.Ops[1] = routeOK(2, nodeB, KindRoute2, "r2-1", 100, "attempt-1", nodeB)
		}},
		{"503 with an empty reason", ClassEmptyReason, "route2:r2-2", func(h *History) {
			h.Ops[5].Reason, h.Ops[5].Body = "", `{"error":""}`
		}},
		{"Submit rejected with an empty reason", ClassEmptyReason, "work:w-3", func(h *History) {
			h.Ops = append(h.Ops, Op{Client: 9, Node: nodeB, Kind: KindWork, Key: "w-3", Start: at(800), End: at(805), Status: 503, Outcome: "rejected", Phase: "rejected"})
		}},
		{"hung request to a live node", ClassHung, "route1:r1-9", func(h *History) {
			h.Ops = append(h.Ops, Op{Client: 10, Node: nodeB, Kind: KindRoute1, Key: "r1-9", Start: at(6000), End: at(14000), Timeout: true})
		}},
		{"two primaries in one epoch", ClassTwoPrimaries, "", func(h *History) {
			h.Status = append(h.Status, StatusObs{Asked: at(90), Time: at(100), Node: nodeB, Role: "primary", Epoch: 0, Peers: 0})
		}},
		{"epoch decreased", ClassEpochDecrease, "", func(h *History) {
			h.Status = append(h.Status, StatusObs{Asked: at(3990), Time: at(4000), Node: nodeA, Role: "standby", Epoch: 0, Peers: 1})
		}},
		{"records disagree on the owner", ClassDisagreement, "r2-2", func(h *History) {
			setFinal(h, nodeB, "r2-2", func(r Record) { r["owner_node"] = nodeB })
		}},
		{"record held by one node only", ClassDisagreement, "w-9", func(h *History) {
			h.Final[nodeA] = append(h.Final[nodeA], record(nodeA, "w-9", "completed", "attempt-8", nodeA, nodeA, ""))
		}},
		{"pair did not re-form after a fault", ClassNotQuiesced, "", func(h *History) { h.Faults[1].Reformed = false }},
		{"quiesce bound ran out", ClassNotQuiesced, "", func(h *History) { h.Quiesced = false }},
		{"record left pending", ClassNotQuiesced, "r2-2", func(h *History) {
			for _, n := range []string{nodeA, nodeB} {
				setFinal(h, n, "r2-2", func(r Record) { r["phase"], r["result"] = "submitted", "pending" })
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := clean()
			tc.inject(&h)
			r := Check(h)
			var hits []Violation
			for _, v := range r.Violations {
				if v.Class == tc.class && v.Key == tc.key {
					hits = append(hits, v)
				}
			}
			if len(hits) == 0 {
				t.Fatalf("no %s violation for %q; got %v", tc.class, tc.key, r.Violations)
			}
			if r.OK() || !strings.HasPrefix(r.Summary(7), "chaos summary: result=FAIL ") {
				t.Fatalf("report is OK with %v", r.Violations)
			}
			t.Log(hits[0])
		})
	}
}

func TestAcknowledgedPerAnswer(t *testing.T) {
	for _, tc := range []struct {
		op   Op
		want bool
	}{
		{Op{Kind: KindRoute2, Status: 200}, true},
		{Op{Kind: KindRoute1, Status: 201}, true},
		{Op{Kind: KindRoute2, Status: 409, Reason: "request_in_progress"}, false},
		{Op{Kind: KindRoute2, Status: 503, Reason: "owner_unreachable"}, false},
		{Op{Kind: KindRoute2, Timeout: true}, false},
		{Op{Kind: KindWork, Status: 200, Outcome: "created", Phase: "submitted"}, true},
		{Op{Kind: KindWork, Status: 200, Outcome: "duplicate", Phase: "submitted"}, true},
		{Op{Kind: KindWork, Status: 200, Outcome: "duplicate", Phase: "completed"}, true},
		{Op{Kind: KindWork, Status: 503, Outcome: "duplicate", Phase: "rejected", Reason: "x"}, false},
		{Op{Kind: KindWork, Status: 503, Outcome: "rejected", Phase: "rejected", Reason: "x"}, false},
		{Op{Kind: KindWork, Status: 409, Outcome: "conflict", Phase: "completed", Reason: "request_key_conflict"}, false},
	} {
		if got := tc.op.Acknowledged(); got != tc.want {
			t.Errorf("%+v acknowledged = %v, want %v", tc.op, got, tc.want)
		}
	}
}

func TestDecodeRecords(t *testing.T) {
	recs, err := DecodeRecords([]byte(`{"target":"x","total_records":1,"truncated":false,"records":[{"request_key":"k","phase":"completed","promotion_epoch":3}]}`))
	if err != nil || len(recs) != 1 || recs[0].Str("request_key") != "k" || recs[0]["promotion_epoch"] != float64(3) {
		t.Fatalf("decoded %v, %v", recs, err)
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"http-route::soak.Route1::caller-0a1b2c::s1-c01-route1-7": "s1-c01-route1-7",
		"http-route::soak.Route1::caller-0a1b2c::a::b":            "a::b",
		"http-route::soak.Route1::9f8e7d":                         "http-route::soak.Route1::9f8e7d", // minted, no client key
		"s1-c02-work-3":                                           "s1-c02-work-3",
		"startup::soak.Boot":                                      "startup::soak.Boot",
	} {
		if got := ClientKey(in); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// A Clustered(1) answer whose only node was killed right after answering
// takes its record along (the record is sent when it ends, batched): that is
// counted as documented, not as lost. The same loss without a kill of the
// executing node, or with one long after, is a lost acknowledgement.
func TestRoute1RecordLostWithItsNode(t *testing.T) {
	withKill := func(killAt int) History {
		h := clean()
		h.Ops = append(h.Ops, routeOK(9, nodeB, KindRoute1, "r1-9", 6000, "attempt-9", nodeB))
		h.Effects = append(h.Effects, Effect{Kind: KindRoute1, Key: "r1-9", Attempt: "attempt-9", Node: nodeB, Time: at(6002)})
		if killAt >= 0 {
			h.Faults = append(h.Faults, Fault{Kind: FaultKillStandby, Node: nodeB, Start: at(killAt), End: at(killAt + 1000), Reformed: true})
		}
		return h
	}
	r := Check(withKill(6012))
	if !r.OK() || r.Route1Lost != 1 {
		t.Fatalf("killed 7 ms after the answer: route1 lost with node %d, violations %v", r.Route1Lost, r.Violations)
	}
	// A retry on the other node, refused while the owner was down, leaves
	// the pair holding that refusal: still the documented loss.
	h := withKill(6012)
	h.Ops = append(h.Ops, Op{Client: 9, Node: nodeA, Kind: KindRoute1, Key: "r1-9", Payload: "p-r1-9", Start: at(6008), End: at(6020),
		Status: 503, Body: `{"error":"owner_unreachable"}`, Reason: "owner_unreachable"})
	for n, rec := range both("r1-9", "rejected", "attempt-9", nodeB, "", "owner_unreachable") {
		h.Final[n] = append(h.Final[n], rec)
	}
	if r := Check(h); !r.OK() || r.Route1Lost != 1 {
		t.Fatalf("killed node, retry refused: route1 lost with node %d, violations %v", r.Route1Lost, r.Violations)
	}
	for name, killAt := range map[string]int{"no kill": -1, "killed 3 s later": 9005} {
		r := Check(withKill(killAt))
		if r.Count(ClassLostAck) != 1 || r.Route1Lost != 0 {
			t.Errorf("%s: lost %d, route1 lost with node %d; want a lost acknowledgement", name, r.Count(ClassLostAck), r.Route1Lost)
		}
	}
}

// Two 2xx answers of one key under different attempts are a replay
// mismatch, unless the docs allow the re-run: during a cut both sides serve.
// Under one attempt, different bodies are always a mismatch.
func TestReplayAcrossAttemptsDuringACutIsARerun(t *testing.T) {
	build := func(cut bool, sameAttempt bool) History {
		h := clean()
		second := "attempt-11"
		if sameAttempt {
			second = "attempt-10"
		}
		h.Ops = append(h.Ops,
			routeOK(9, nodeA, KindRoute1, "r1-cut", 6000, "attempt-10", nodeA),
			routeOK(9, nodeB, KindRoute1, "r1-cut", 6100, second, nodeB))
		h.Effects = append(h.Effects,
			Effect{Kind: KindRoute1, Key: "r1-cut", Attempt: "attempt-10", Node: nodeA, Time: at(6002)},
			Effect{Kind: KindRoute1, Key: "r1-cut", Attempt: second, Node: nodeB, Time: at(6102)})
		for n, rec := range both("r1-cut", "completed", second, nodeB, nodeB, "") {
			h.Final[n] = append(h.Final[n], rec)
		}
		if cut {
			h.Faults = append(h.Faults, Fault{Kind: FaultPartition, Start: at(5900), End: at(7000), Reformed: true})
		}
		return h
	}
	if r := Check(build(true, false)); r.Count(ClassReplayMismatch) != 0 {
		t.Errorf("re-run during a cut reported as a replay mismatch: %v", r.Violations)
	}
	if r := Check(build(false, false)); r.Count(ClassReplayMismatch) != 1 {
		t.Errorf("re-run with no fault: %d replay mismatches, want 1", r.Count(ClassReplayMismatch))
	}
	if r := Check(build(true, true)); r.Count(ClassReplayMismatch) != 1 {
		t.Errorf("one attempt, two bodies, during a cut: %d replay mismatches, want 1", r.Count(ClassReplayMismatch))
	}
}

// A node killed and restarted serves a Clustered(1) route alone until it is
// linked to its peer again, and so does the peer: two answers of one key
// under two attempts in that window are a documented re-run (seen in a
// 10-minute crash soak: the restarted node answered 5 ms before the pair
// re-formed, the peer 2 ms later). After the pair formed, or for
// Clustered(2), or under one attempt, they are still a replay mismatch.
func TestReplayWhileARestartedNodeIsUnlinkedIsARerun(t *testing.T) {
	build := func(kind string, firstAt, secondAt int, sameAttempt bool) History {
		h := clean()
		second := "attempt-11"
		if sameAttempt {
			second = "attempt-10"
		}
		h.Ops = append(h.Ops,
			routeOK(9, nodeA, kind, "r-restart", firstAt, "attempt-10", nodeA),
			routeOK(9, nodeB, kind, "r-restart", secondAt, second, nodeB))
		h.Effects = append(h.Effects,
			Effect{Kind: kind, Key: "r-restart", Attempt: "attempt-10", Node: nodeA, Time: at(firstAt + 1)},
			Effect{Kind: kind, Key: "r-restart", Attempt: second, Node: nodeB, Time: at(secondAt + 1)})
		for n, rec := range both("r-restart", "completed", second, nodeB, nodeB, "") {
			h.Final[n] = append(h.Final[n], rec)
		}
		// nodeA killed at 5000, restarted by 6000, the pair seen formed at 6200.
		h.Faults = append(h.Faults, Fault{Kind: FaultKillStandby, Node: nodeA, Start: at(5000), End: at(6000),
			Reformed: true, Formed: at(6200)})
		return h
	}
	for _, tc := range []struct {
		name              string
		kind              string
		firstAt, secondAt int
		sameAttempt       bool
		want              int
	}{
		{"both before the pair formed", KindRoute1, 6100, 6102, false, 0},
		{"the first before, the second after", KindRoute1, 6150, 6300, false, 0},
		{"both after the pair formed", KindRoute1, 6300, 6302, false, 1},
		{"Clustered(2)", KindRoute2, 6100, 6102, false, 1},
		{"one attempt, two bodies", KindRoute1, 6100, 6102, true, 1},
	} {
		if r := Check(build(tc.kind, tc.firstAt, tc.secondAt, tc.sameAttempt)); r.Count(ClassReplayMismatch) != tc.want {
			t.Errorf("%s: %d replay mismatches, want %d: %v", tc.name, r.Count(ClassReplayMismatch), tc.want, r.Violations)
		}
	}
}
