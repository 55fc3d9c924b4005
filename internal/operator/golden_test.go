package operator

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"

	"meshgo.dev/mesh/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// goldenCases are the documents under testdata/<name>.{json,txt}.golden,
// each rendered from goldenSource through the whole server→client path:
// Answer, DecodeReply, SetTarget, then WriteJSON or WriteText.
var goldenCases = []struct {
	name  string
	query wire.OperatorQuery
	src   func() *fakeSource
}{
	{"status", wire.OperatorQuery{Kind: uint8(KindStatus)}, goldenSource},
	{"status_isolated", wire.OperatorQuery{Kind: uint8(KindStatus)}, func() *fakeSource {
		s := goldenSource()
		s.status.PeerNodes = nil
		s.status.Health = continuity.HealthLocalOnly
		s.status.Peers = []PeerView{{Node: standbyNode, Link: LinkDisconnected, Heard: true, Role: continuity.RoleStandby, Epoch: 1, HeartbeatAge: 4250 * time.Millisecond}}
		return s
	}},
	{"status_quarantined", wire.OperatorQuery{Kind: uint8(KindStatus)}, func() *fakeSource {
		s := goldenSource()
		s.status.Ready, s.status.NotReadyReason = false, "quarantined"
		s.status.Peers = []PeerView{{Node: standbyNode, Link: LinkSyncing, Protocol: 3}}
		return s
	}},
	{"status_lease", wire.OperatorQuery{Kind: uint8(KindStatus)}, func() *fakeSource {
		s := goldenSource()
		s.status.Role, s.status.Epoch = continuity.RoleStandby, 3
		s.status.PeerNodes, s.status.Health = nil, continuity.HealthLocalOnly
		s.status.Ready, s.status.NotReadyReason = false, "no_primary"
		s.status.Peers = []PeerView{{Node: standbyNode, Link: LinkDisconnected, Heard: true, Role: continuity.RolePrimary, Epoch: 3, HeartbeatAge: 2600 * time.Millisecond}}
		s.status.SafetyMode = "postgres"
		s.status.Lease = &LeaseView{Holder: standbyNode, Epoch: 3, ExpiresIn: 1450 * time.Millisecond}
		s.status.PromotionRefusal = "lease_held_by:" + standbyNode
		return s
	}},
	{"continuity_record", wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: "http-route::todos.List::7f3a"}, goldenSource},
	{"continuity_record_pending", wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: "startup::work.Sync"}, goldenSource},
	{"continuity_record_result", wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: "settle-42"}, func() *fakeSource {
		return withTypedRecord([]byte(`{"id":42,"lines":[1,2],"settled":true}`))
	}},
	{"continuity_record_result_base64", wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: "settle-42"}, func() *fakeSource {
		return withTypedRecord([]byte{0x00, 0xff, 'o', 'k'})
	}},
	{"continuity_list", wire.OperatorQuery{Kind: uint8(KindContinuityList)}, goldenSource},
	{"continuity_list_limited", wire.OperatorQuery{Kind: uint8(KindContinuityList), HasLimit: true, Limit: 1}, goldenSource},
	{"continuity_list_empty", wire.OperatorQuery{Kind: uint8(KindContinuityList)}, func() *fakeSource {
		s := goldenSource()
		s.records = nil
		return s
	}},
	{"diagnostics", wire.OperatorQuery{Kind: uint8(KindDiagnostics)}, goldenSource},
	{"switchover", wire.OperatorQuery{Kind: uint8(KindSwitchover), RequestKey: standbyNode}, goldenSource},
	{"diagnostics_empty", wire.OperatorQuery{Kind: uint8(KindDiagnostics)}, func() *fakeSource {
		s := goldenSource()
		s.diag.Entries, s.diag.Dropped = nil, 0
		return s
	}},
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			reply := Answer(tc.query, tc.src())
			if !reply.OK {
				t.Fatalf("Answer: error reply %q", reply.Error)
			}
			report, err := DecodeReply(Kind(tc.query.Kind), reply.Body)
			if err != nil {
				t.Fatalf("DecodeReply: %v\nbody: %s", err, reply.Body)
			}
			report.SetTarget(primaryNode)

			var js, txt bytes.Buffer
			if err := WriteJSON(&js, report); err != nil {
				t.Fatal(err)
			}
			if err := report.WriteText(&txt); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tc.name+".json.golden", js.Bytes())
			checkGolden(t, tc.name+".txt.golden", txt.Bytes())
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestGoldenJSONKeysSorted walks every golden JSON document and checks that
// each object's keys are in ascending order, the contract of DESIGN §6.
func TestGoldenJSONKeysSorted(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no golden JSON files")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := checkSortedKeys(dec); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// checkSortedKeys consumes one JSON value from dec, failing on any object
// whose keys are not strictly ascending.
func checkSortedKeys(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		prev := ""
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key := k.(string)
			if prev != "" && strings.Compare(prev, key) >= 0 {
				return &keyOrderError{prev, key}
			}
			prev = key
			if err := checkSortedKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkSortedKeys(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

type keyOrderError struct{ prev, key string }

func (e *keyOrderError) Error() string { return "key " + e.key + " follows " + e.prev }

// withTypedRecord is goldenSource plus a completed typed work record whose
// stored output is out.
func withTypedRecord(out []byte) *fakeSource {
	s := goldenSource()
	s.records = append(s.records, continuity.Record{
		RequestKey: "settle-42", PayloadHash: "sha256:5c1f", Attempt: 9,
		Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
		IngressNode: standbyNode, OwnerNode: primaryNode, ReplicaNode: standbyNode,
		ReplicationCount: 2, ReplicaStatus: continuity.ReplicaMirrored,
		Role: continuity.RolePrimary, Epoch: 1, Health: continuity.HealthHealthy,
		ExecutionNode: primaryNode, RoutedRemotely: true, RuntimeName: "invoices.Settle",
		SubmittedAt: fixedTime.Add(4 * time.Second), CompletedAt: fixedTime.Add(4100 * time.Millisecond),
		Input: []byte(`{"id":42}`), Output: out,
	})
	return s
}
