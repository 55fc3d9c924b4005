package meshtest

import (
	"strings"
	"sync"
	"testing"
)

func rec(key, attempt, phase, exec string, epoch uint64) RecordObs {
	return RecordObs{RequestKey: key, AttemptID: attempt, Phase: phase, ExecutionNode: exec, Epoch: epoch}
}

// failover is a correct promotion and fenced rejoin: the primary dies with
// startup work pending, the standby promotes and re-runs it under a new
// attempt, and the old primary comes back as a standby at the new epoch.
func failover() []Observation {
	const key = "startup::work.Add"
	return []Observation{
		{Node: "primary", Role: "primary", Epoch: 0, Records: []RecordObs{rec(key, "attempt-0", "submitted", "", 0)}},
		{Node: "standby", Role: "standby", Epoch: 0, Records: []RecordObs{rec(key, "attempt-0", "submitted", "", 0)}},
		{Node: "standby", Role: "primary", Epoch: 1, Records: []RecordObs{rec(key, "attempt-1", "completed", "standby", 1)}},
		{Node: "primary", Role: "standby", Epoch: 1, Records: []RecordObs{rec(key, "attempt-1", "completed", "standby", 1)}},
	}
}

func historyOf(obs []Observation) *History {
	var h History
	for _, o := range obs {
		h.Observe(o)
	}
	return &h
}

func TestHistoryAcceptsCorrectScenarios(t *testing.T) {
	tests := map[string][]Observation{
		"empty":    nil,
		"failover": failover(),
		"same node primary twice in an epoch": {
			{Node: "a", Role: "primary", Epoch: 2}, {Node: "a", Role: "primary", Epoch: 2},
		},
		"primaries in different epochs": {
			{Node: "a", Role: "primary", Epoch: 0}, {Node: "b", Role: "primary", Epoch: 1},
		},
		"earlier completion superseded in the final observation": {
			{Node: "a", Records: []RecordObs{rec("k", "attempt-0", "completed", "a", 0)}},
			{Node: "b", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
			{Node: "a", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
		},
		"completed and rejected attempts": {
			{Node: "a", Records: []RecordObs{rec("k", "attempt-0", "rejected", "a", 0)}},
			{Node: "b", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
		},
		"unknown execution node is not a disagreement": {
			{Node: "a", Records: []RecordObs{rec("k", "attempt-1", "completed", "", 1)}},
			{Node: "b", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
		},
	}
	for name, obs := range tests {
		t.Run(name, func(t *testing.T) {
			h := historyOf(obs)
			h.RequireAcknowledged()
			if err := h.Check(); err != nil {
				t.Fatalf("Check: %v", err)
			}
		})
	}
	h := historyOf(failover())
	h.RequireAcknowledged("startup::work.Add")
	if err := h.Check(); err != nil {
		t.Fatalf("acknowledged key present: %v", err)
	}
}

func TestHistoryViolations(t *testing.T) {
	tests := []struct {
		name string
		obs  []Observation
		ack  []string
		want string
	}{
		{
			name: "two primaries in one epoch",
			obs: []Observation{
				{Node: "b", Role: "primary", Epoch: 3},
				{Node: "a", Role: "primary", Epoch: 3},
				{Node: "a", Role: "standby", Epoch: 4},
			},
			want: "epoch 3 has 2 primaries: a, b",
		},
		{
			name: "epoch decreases",
			obs: []Observation{
				{Node: "a", Role: "primary", Epoch: 2},
				{Node: "b", Role: "standby", Epoch: 1},
				{Node: "a", Role: "primary", Epoch: 1},
			},
			want: "node a epoch decreased from 2 to 1 (observation 2)",
		},
		{
			name: "restarted promoted node loses its epoch",
			obs: []Observation{
				{Node: "standby", Role: "primary", Epoch: 1},
				{Node: "standby", Role: "standby", Epoch: 0},
			},
			want: "node standby epoch decreased from 1 to 0 (observation 1)",
		},
		{
			name: "two completed attempts",
			obs: []Observation{
				{Node: "a", Records: []RecordObs{rec("k", "attempt-0", "completed", "a", 0)}},
				{Node: "b", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
			},
			want: `request key "k" completed under 2 attempts: attempt-0 (on a); attempt-1 (on b)`,
		},
		{
			name: "two completed attempts on one node",
			obs: []Observation{
				{Node: "a", Records: []RecordObs{
					rec("k", "attempt-0", "completed", "a", 0), rec("k", "attempt-1", "completed", "a", 1),
				}},
			},
			want: `request key "k" completed under 2 attempts: attempt-0 (on a); attempt-1 (on a)`,
		},
		{
			name: "one attempt executed on two nodes",
			obs: []Observation{
				{Node: "a", Records: []RecordObs{rec("k", "attempt-1", "completed", "a", 1)}},
				{Node: "b", Records: []RecordObs{rec("k", "attempt-1", "completed", "b", 1)}},
			},
			want: `request key "k" attempt attempt-1 completed by different execution nodes: a (on a); b (on b)`,
		},
		{
			name: "acknowledged key lost",
			obs:  failover(),
			ack:  []string{"startup::work.Add", "http-route::todos.List::1"},
			want: `acknowledged request key "http-route::todos.List::1" is missing from the final observation of every node`,
		},
		{
			name: "acknowledged key only in an earlier observation",
			obs: []Observation{
				{Node: "a", Records: []RecordObs{rec("k", "attempt-0", "submitted", "", 0)}},
				{Node: "a"},
			},
			ack:  []string{"k"},
			want: `acknowledged request key "k" is missing from the final observation of every node`,
		},
		{
			name: "acknowledged key without observations",
			ack:  []string{"k", "k"},
			want: `acknowledged request key "k" is missing from the final observation of every node`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := historyOf(tt.obs)
			h.RequireAcknowledged(tt.ack...)
			err := h.Check()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Check:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestHistoryReportsEveryViolationInStableOrder(t *testing.T) {
	obs := []Observation{
		{Node: "a", Role: "primary", Epoch: 1, Records: []RecordObs{rec("k2", "attempt-0", "completed", "a", 1)}},
		{Node: "b", Role: "primary", Epoch: 1, Records: []RecordObs{rec("k2", "attempt-1", "completed", "b", 1)}},
		{Node: "a", Role: "primary", Epoch: 0, Records: []RecordObs{
			rec("k1", "attempt-0", "completed", "a", 0), rec("k2", "attempt-0", "completed", "a", 1),
		}},
		{Node: "b", Role: "standby", Epoch: 1, Records: []RecordObs{
			rec("k1", "attempt-1", "completed", "b", 1), rec("k2", "attempt-1", "completed", "b", 1),
		}},
	}
	want := strings.Join([]string{
		"epoch 1 has 2 primaries: a, b",
		"node a epoch decreased from 1 to 0 (observation 2)",
		`request key "k1" completed under 2 attempts: attempt-0 (on a); attempt-1 (on b)`,
		`request key "k2" completed under 2 attempts: attempt-0 (on a); attempt-1 (on b)`,
		`acknowledged request key "lost" is missing from the final observation of every node`,
	}, "\n")
	for range 5 {
		h := historyOf(obs)
		h.RequireAcknowledged("k1", "lost")
		if err := h.Check(); err == nil || err.Error() != want {
			t.Fatalf("Check:\n%v\nwant:\n%s", err, want)
		}
	}
}

func TestHistoryCopiesRecords(t *testing.T) {
	var h History
	records := []RecordObs{rec("k", "attempt-0", "completed", "a", 0)}
	h.Observe(Observation{Node: "a", Records: records})
	records[0].AttemptID = "attempt-9"
	got := h.Observations()
	if got[0].Records[0].AttemptID != "attempt-0" {
		t.Fatal("Observe kept the caller's slice")
	}
	got[0].Records[0].AttemptID = "attempt-8"
	if h.Observations()[0].Records[0].AttemptID != "attempt-0" {
		t.Fatal("Observations exposed internal records")
	}
}

func TestHistoryConcurrentObserve(t *testing.T) {
	var h History
	var wg sync.WaitGroup
	for _, node := range []string{"a", "b", "c", "d"} {
		wg.Go(func() {
			for epoch := range uint64(100) {
				h.Observe(Observation{Node: node, Role: "standby", Epoch: epoch,
					Records: []RecordObs{rec("k-"+node, "attempt-0", "submitted", "", epoch)}})
				h.RequireAcknowledged("k-" + node)
				if epoch%10 == 0 {
					_ = h.Check()
				}
			}
		})
	}
	wg.Wait()
	if err := h.Check(); err != nil {
		t.Fatal(err)
	}
	if n := len(h.Observations()); n != 400 {
		t.Fatalf("%d observations, want 400", n)
	}
}
