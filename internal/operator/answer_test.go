package operator

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

func TestAnswerStatusNormalizesMembership(t *testing.T) {
	tests := []struct {
		name      string
		peers     []string
		wantPeers []string
		wantNodes []string
	}{
		{"no peers", nil, []string{}, []string{primaryNode}},
		{"self and duplicates removed", []string{standbyNode, primaryNode, "", standbyNode}, []string{standbyNode}, []string{primaryNode, standbyNode}},
		{"sorted", []string{"c@h:1", "a@h:1"}, []string{"a@h:1", "c@h:1"}, []string{"a@h:1", "c@h:1", primaryNode}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := goldenSource()
			src.status.PeerNodes = tc.peers
			s := mustDecode(t, DecodeStatus, Answer(wire.OperatorQuery{Kind: uint8(KindStatus)}, src))
			if !slices.Equal(s.Membership.PeerNodes, tc.wantPeers) || s.Membership.PeerNodes == nil {
				t.Errorf("peer_nodes = %#v, want %#v", s.Membership.PeerNodes, tc.wantPeers)
			}
			if !slices.Equal(s.Membership.Nodes, tc.wantNodes) {
				t.Errorf("nodes = %#v, want %#v", s.Membership.Nodes, tc.wantNodes)
			}
		})
	}
}

func TestAnswerLookup(t *testing.T) {
	src := goldenSource()
	tests := []struct {
		key     string
		wantErr string
	}{
		{"", "request_key_missing"},
		{"no-such-key", "request_key_not_found"},
		{"order-42", ""},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			reply := Answer(wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: tc.key}, src)
			if tc.wantErr != "" {
				if reply.OK || reply.Error != tc.wantErr {
					t.Fatalf("reply = %+v, want error %q", reply, tc.wantErr)
				}
				return
			}
			c := mustDecode(t, DecodeContinuityRecord, reply)
			if c.Record.RequestKey != tc.key || c.Record.Error != "unsupported_replication_count:3" || c.Record.AttemptID != "attempt-5" {
				t.Errorf("record = %+v", c.Record)
			}
		})
	}
}

func TestAnswerListSortsAndLimits(t *testing.T) {
	src := goldenSource()
	src.records = manyRecords(5)
	keys := []string{"key-000000", "key-000001", "key-000002", "key-000003", "key-000004"}
	tests := []struct {
		name          string
		hasLimit      bool
		limit         uint32
		wantKeys      []string
		wantTruncated bool
	}{
		{"no limit", false, 0, keys, false},
		{"limit zero", true, 0, []string{}, true},
		{"limit two keeps the first two", true, 2, keys[:2], true},
		{"limit equal to total", true, 5, keys, false},
		{"limit above total", true, 99, keys, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply := Answer(wire.OperatorQuery{Kind: uint8(KindContinuityList), HasLimit: tc.hasLimit, Limit: tc.limit}, src)
			l := mustDecode(t, DecodeContinuityList, reply)
			var got []string
			for _, r := range l.Records {
				got = append(got, r.RequestKey)
			}
			if !slices.Equal(got, tc.wantKeys) || l.Records == nil {
				t.Errorf("keys = %v, want %v", got, tc.wantKeys)
			}
			if l.TotalRecords != 5 || l.Truncated != tc.wantTruncated {
				t.Errorf("total_records=%d truncated=%v, want 5 %v", l.TotalRecords, l.Truncated, tc.wantTruncated)
			}
		})
	}
}

func TestAnswerListTieBreaksOnAttemptID(t *testing.T) {
	src := goldenSource()
	r := manyRecords(1)[0]
	a, b := r, r
	a.Attempt, b.Attempt = 10, 2 // "attempt-10" sorts before "attempt-2" as text
	src.records = []continuity.Record{b, a}
	l := mustDecode(t, DecodeContinuityList, Answer(wire.OperatorQuery{Kind: uint8(KindContinuityList)}, src))
	if got := []string{l.Records[0].AttemptID, l.Records[1].AttemptID}; !slices.Equal(got, []string{"attempt-10", "attempt-2"}) {
		t.Errorf("attempt order = %v", got)
	}
}

func TestAnswerDiagnosticsLimit(t *testing.T) {
	ring := continuity.NewDiagnostics(3)
	for i := range 3 {
		ring.Add(continuity.Entry{Transition: fmt.Sprintf("t%d", i)})
	}
	full := &fakeSource{diag: ring.Snapshot()}
	ring.Add(continuity.Entry{Transition: "t3"}) // drops t0
	dropped := &fakeSource{diag: ring.Snapshot()}

	tests := []struct {
		name          string
		src           *fakeSource
		hasLimit      bool
		limit         uint32
		wantSeq       []uint64
		wantTruncated bool
	}{
		{"all retained", full, false, 0, []uint64{1, 2, 3}, false},
		{"limit keeps the most recent", full, true, 2, []uint64{2, 3}, true},
		{"limit above total", full, true, 10, []uint64{1, 2, 3}, false},
		{"dropped entries truncate", dropped, false, 0, []uint64{2, 3, 4}, true},
		{"limit zero", full, true, 0, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply := Answer(wire.OperatorQuery{Kind: uint8(KindDiagnostics), HasLimit: tc.hasLimit, Limit: tc.limit}, tc.src)
			d := mustDecode(t, DecodeDiagnostics, reply)
			var seq []uint64
			for _, e := range d.Entries {
				seq = append(seq, e.Sequence)
			}
			if !slices.Equal(seq, tc.wantSeq) || d.Entries == nil {
				t.Errorf("sequences = %v, want %v", seq, tc.wantSeq)
			}
			if d.TotalEntries != 3 || d.BufferCapacity != 3 || d.Truncated != tc.wantTruncated {
				t.Errorf("total=%d capacity=%d truncated=%v, want 3 3 %v", d.TotalEntries, d.BufferCapacity, d.Truncated, tc.wantTruncated)
			}
		})
	}
}

func TestAnswerDiagnosticsEmptyStringsAreNull(t *testing.T) {
	src := &fakeSource{diag: continuity.Snapshot{Capacity: 8, Entries: []continuity.Entry{{Sequence: 1, Transition: "promote"}}}}
	reply := Answer(wire.OperatorQuery{Kind: uint8(KindDiagnostics)}, src)
	body := string(reply.Body)
	for _, key := range []string{"attempt_id", "cluster_role", "execution_node", "owner_node", "reason", "replica_node", "replica_status", "replication_health", "request_key", "time"} {
		if !strings.Contains(body, `"`+key+`":null`) {
			t.Errorf("%s is not null in %s", key, body)
		}
	}
	if !strings.Contains(body, `"metadata":[]`) {
		t.Errorf("metadata is not an empty array in %s", body)
	}
}

func TestAnswerUnknownKind(t *testing.T) {
	reply := Answer(wire.OperatorQuery{Kind: 9}, goldenSource())
	if reply.OK || reply.Error != "invalid operator query kind 9" {
		t.Errorf("reply = %+v", reply)
	}
}

// TestAnswerTooLarge proves a reply past the bound on a body becomes an
// error reply naming the fix, not a broken connection, and that a limit gets
// under it.
func TestAnswerTooLarge(t *testing.T) {
	src := goldenSource()
	src.records = manyRecords(200)
	full := Answer(wire.OperatorQuery{Kind: uint8(KindContinuityList)}, src)
	if !full.OK {
		t.Fatalf("reply failed: %q", full.Error)
	}
	bound := len(full.Body) - 1
	reply := answer(wire.OperatorQuery{Kind: uint8(KindContinuityList)}, src, bound)
	want := fmt.Sprintf("operator reply too large: %d bytes (max %d); query with a limit", len(full.Body), bound)
	if reply.OK || reply.Error != want {
		t.Fatalf("reply OK=%v error=%.120q, want %q", reply.OK, reply.Error, want)
	}
	reply = answer(wire.OperatorQuery{Kind: uint8(KindContinuityList), HasLimit: true, Limit: 2}, src, bound)
	if !reply.OK {
		t.Fatalf("limited reply failed: %q", reply.Error)
	}
}

// FuzzAnswer checks that no query makes Answer panic and that every OK reply
// decodes under its own kind.
func FuzzAnswer(f *testing.F) {
	for k := range uint8(5) {
		f.Add(k, "order-42", false, uint32(0))
		f.Add(k, "", true, uint32(1))
	}
	src := goldenSource()
	f.Fuzz(func(t *testing.T, kind uint8, key string, hasLimit bool, limit uint32) {
		q := wire.OperatorQuery{Kind: kind, RequestKey: key, HasLimit: hasLimit, Limit: limit}
		reply := Answer(q, src)
		if !reply.OK {
			if reply.Error == "" {
				t.Fatalf("error reply without a reason for %+v", q)
			}
			return
		}
		if _, err := DecodeReply(Kind(kind), reply.Body); err != nil {
			t.Fatalf("OK reply to %+v does not decode: %v", q, err)
		}
	})
}

func mustDecode[T any](t *testing.T, decode func([]byte) (T, error), reply wire.OperatorReply) T {
	t.Helper()
	if !reply.OK {
		t.Fatalf("error reply %q", reply.Error)
	}
	v, err := decode(reply.Body)
	if err != nil {
		t.Fatalf("decode: %v\nbody: %s", err, reply.Body)
	}
	return v
}

// A switchover query passes its target standby to the source and turns a
// refusal into an error reply carrying the refusal's reason; a source that
// cannot switch over says so.
func TestAnswerSwitchover(t *testing.T) {
	src := goldenSource()
	reply := Answer(wire.OperatorQuery{Kind: uint8(KindSwitchover), RequestKey: standbyNode}, src)
	if sw := mustDecode(t, DecodeSwitchover, reply); sw.To != standbyNode || sw.Epoch != 2 || len(sw.Steps) != 6 || src.switchTo != standbyNode {
		t.Errorf("switchover %+v, asked for %q", sw, src.switchTo)
	}
	src.switchErr = errors.New("switchover_rejected:standby_not_caught_up")
	if reply := Answer(wire.OperatorQuery{Kind: uint8(KindSwitchover)}, src); reply.OK || reply.Error != "switchover_rejected:standby_not_caught_up" {
		t.Errorf("refused switchover: %+v", reply)
	}
	var plain struct{ Source }
	plain.Source = src
	if reply := Answer(wire.OperatorQuery{Kind: uint8(KindSwitchover)}, plain); reply.OK || reply.Error != "switchover_rejected:unsupported" {
		t.Errorf("source without Switchover: %+v", reply)
	}
	for _, body := range []string{
		`{"duration_ms":1,"epoch":1,"from":"a","previous_epoch":1,"safety_mode":"peer","steps":[],"target":"","to":"b"}`,
		`{"duration_ms":1,"epoch":2,"from":"a","previous_epoch":1,"safety_mode":"peer","target":"","to":"b"}`,
		`{"duration_ms":1,"epoch":2,"from":"a","previous_epoch":1,"safety_mode":"raft","steps":[],"target":"","to":"b"}`,
	} {
		if _, err := DecodeSwitchover([]byte(body)); err == nil {
			t.Errorf("DecodeSwitchover accepted %s", body)
		}
	}
}
