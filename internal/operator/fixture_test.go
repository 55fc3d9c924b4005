package operator

import (
	"fmt"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// fakeSource is an in-memory Source with fixed contents.
type fakeSource struct {
	status  StatusView
	records []continuity.Record
	diag    continuity.Snapshot

	switchover SwitchoverView
	switchErr  error
	switchTo   string // the last Switchover's argument
}

func (f *fakeSource) Switchover(to string) (SwitchoverView, error) {
	f.switchTo = to
	return f.switchover, f.switchErr
}

func (f *fakeSource) Status() StatusView { return f.status }

func (f *fakeSource) Records() []continuity.Record {
	return append([]continuity.Record(nil), f.records...)
}

func (f *fakeSource) Record(key string) (continuity.Record, bool) {
	for _, r := range f.records {
		if r.RequestKey == key {
			return r, true
		}
	}
	return continuity.Record{}, false
}

func (f *fakeSource) Diagnostics() continuity.Snapshot { return f.diag }

const (
	primaryNode = "primary@127.0.0.1:4370"
	standbyNode = "standby@[::1]:4370"
)

// fixedTime is the base of every timestamp in the fixtures, so golden files
// stay byte-stable.
var fixedTime = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

// goldenSource returns the fixture the golden files are rendered from: a
// primary with one peer (listed twice and next to itself, to prove
// normalization), three records in unsorted order and a ring that has
// dropped two entries.
func goldenSource() *fakeSource {
	return &fakeSource{
		switchover: SwitchoverView{From: primaryNode, To: standbyNode, SafetyMode: "peer", PreviousEpoch: 1, Epoch: 2,
			Duration: 14 * time.Millisecond, Steps: []SwitchoverStepView{
				{Step: "checked", Elapsed: 0, Detail: standbyNode + " is a connected standby at epoch 1"},
				{Step: "drained", Elapsed: 2 * time.Millisecond, Detail: "new submissions held; in-flight prepares answered"},
				{Step: "caught_up", Elapsed: 5 * time.Millisecond, Detail: "standby applied every replicated record; attempt watermark 42, 3 pending"},
				{Step: "promoted", Elapsed: 12 * time.Millisecond, Detail: standbyNode + " is primary at epoch 2"},
				{Step: "stepped_down", Elapsed: 13 * time.Millisecond, Detail: primaryNode + " is standby at epoch 2"},
				{Step: "resumed", Elapsed: 14 * time.Millisecond, Detail: "held submissions proceed"},
			}},
		status: StatusView{
			LocalNode: primaryNode,
			PeerNodes: []string{standbyNode, primaryNode, standbyNode},
			Role:      continuity.RolePrimary,
			Epoch:     1,
			Health:    continuity.HealthHealthy,
			Peers: []PeerView{
				{Node: standbyNode, Link: LinkConnected, Protocol: 4, Heard: true, Role: continuity.RoleStandby, Epoch: 1, HeartbeatAge: 120 * time.Millisecond},
				{Node: primaryNode, Link: LinkConnected}, // the local node: dropped
			},
			Ready:      true,
			SafetyMode: "peer",
		},
		records: []continuity.Record{
			{
				RequestKey: "startup::work.Sync", PayloadHash: "startup-payload::work.Sync", Attempt: 0,
				Phase: continuity.PhaseSubmitted, Result: continuity.ResultPending,
				IngressNode: primaryNode, OwnerNode: primaryNode, ReplicaNode: standbyNode,
				ReplicationCount: 2, ReplicaStatus: continuity.ReplicaMirrored,
				Role: continuity.RolePrimary, Epoch: 1, Health: continuity.HealthHealthy,
				FellBackLocally: true, RuntimeName: "work.Sync",
				SubmittedAt: fixedTime,
			},
			{
				RequestKey: "http-route::todos.List::7f3a", PayloadHash: "sha256:9b1c", Attempt: 3,
				Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
				IngressNode: standbyNode, OwnerNode: primaryNode, ReplicaNode: standbyNode,
				ReplicationCount: 2, ReplicaStatus: continuity.ReplicaMirrored,
				Role: continuity.RolePrimary, Epoch: 1, Health: continuity.HealthHealthy,
				ExecutionNode: primaryNode, RoutedRemotely: true, RuntimeName: "todos.List",
				Kind:        continuity.KindRoute,
				SubmittedAt: fixedTime.Add(time.Second), CompletedAt: fixedTime.Add(1250 * time.Millisecond),
			},
			{
				RequestKey: "order-42", PayloadHash: "sha256:77aa", Attempt: 5,
				Phase: continuity.PhaseRejected, Result: continuity.ResultRejected,
				IngressNode: primaryNode, OwnerNode: primaryNode,
				ReplicationCount: 3, ReplicaStatus: continuity.ReplicaRejected,
				Role: continuity.RolePrimary, Epoch: 1, Health: continuity.HealthLocalOnly,
				FellBackLocally: true, Error: "unsupported_replication_count:3", RuntimeName: "work.Charge",
				SubmittedAt: fixedTime.Add(2 * time.Second), CompletedAt: fixedTime.Add(2 * time.Second),
			},
		},
		diag: continuity.Snapshot{
			Capacity: 4,
			Dropped:  2,
			Entries: []continuity.Entry{
				{
					Sequence: 3, Transition: "startup_registered",
					Metadata: []continuity.KV{{Key: "runtime_name", Value: "work.Sync"}, {Key: "payload_hash", Value: "startup-payload::work.Sync"}},
					Time:     fixedTime,
				},
				{
					Sequence: 4, Transition: "submit", RequestKey: "startup::work.Sync", AttemptID: "attempt-0",
					OwnerNode: primaryNode, ReplicaNode: standbyNode,
					ClusterRole: continuity.RolePrimary, PromotionEpoch: 1,
					ReplicationHealth: continuity.HealthHealthy, ReplicaStatus: continuity.ReplicaPreparing,
					Metadata: []continuity.KV{{Key: "phase", Value: "submitted"}, {Key: "result", Value: "pending"}, {Key: "replication_count", Value: "2"}, {Key: "required_replicas", Value: "1"}},
					Time:     fixedTime.Add(time.Millisecond),
				},
				{
					Sequence: 5, Transition: "rejected", RequestKey: "order-42", AttemptID: "attempt-5",
					OwnerNode: primaryNode, ExecutionNode: "",
					ClusterRole: continuity.RolePrimary, PromotionEpoch: 1,
					ReplicationHealth: continuity.HealthLocalOnly, ReplicaStatus: continuity.ReplicaRejected,
					Reason:   "unsupported_replication_count:3",
					Metadata: []continuity.KV{{Key: "phase", Value: "rejected"}, {Key: "note", Value: "count = 3 is not supported"}},
					Time:     fixedTime.Add(2 * time.Second),
				},
				{
					Sequence: 6, Transition: "promote",
					ClusterRole: continuity.RolePrimary, PromotionEpoch: 1,
					Metadata: []continuity.KV{},
					Time:     fixedTime.Add(3 * time.Second),
				},
			},
		},
	}
}

// manyRecords returns n valid records with distinct keys, in reverse key
// order so sorting is exercised.
func manyRecords(n int) []continuity.Record {
	out := make([]continuity.Record, 0, n)
	for i := n - 1; i >= 0; i-- {
		out = append(out, continuity.Record{
			RequestKey: fmt.Sprintf("key-%06d", i), PayloadHash: fmt.Sprintf("hash-%d", i), Attempt: uint64(i),
			Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
			IngressNode: primaryNode, OwnerNode: primaryNode, ReplicaNode: standbyNode,
			ReplicationCount: 2, ReplicaStatus: continuity.ReplicaMirrored,
			Role: continuity.RolePrimary, Epoch: 1, Health: continuity.HealthHealthy,
			ExecutionNode: primaryNode, FellBackLocally: true, RuntimeName: "work.Add",
			SubmittedAt: fixedTime, CompletedAt: fixedTime.Add(time.Millisecond),
		})
	}
	return out
}
