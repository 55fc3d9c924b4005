package meshtest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Observation is what one node reported at one moment of a scenario: its
// authority (role "primary" or "standby", promotion epoch) and the
// continuity records it held.
type Observation struct {
	Node    string
	Role    string
	Epoch   uint64
	Records []RecordObs
}

// RecordObs is one continuity record as a node reported it. Phase is
// "submitted", "completed" or "rejected".
type RecordObs struct {
	RequestKey    string
	AttemptID     string
	Phase         string
	ExecutionNode string
	Epoch         uint64
}

// phaseCompleted is the phase of a record whose work finished successfully.
const phaseCompleted = "completed"

// History records the observations of a fault scenario and checks the
// cluster's safety invariants over them. Observations are kept in the order
// Observe was called, which should follow real time per node. The zero
// History is empty and ready to use; it is safe for concurrent use.
type History struct {
	mu           sync.Mutex    // guards the fields below
	observations []Observation // in Observe order
	acknowledged []string      // request keys a client saw acknowledged, deduplicated
}

// Observe appends o to the history. It copies o.Records, so the caller may
// reuse the slice.
func (h *History) Observe(o Observation) {
	o.Records = slices.Clone(o.Records)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.observations = append(h.observations, o)
}

// RequireAcknowledged records request keys whose submission a client saw
// acknowledged. Check then fails for each of them that is absent from the
// final observation of every node: an acknowledged record must survive.
func (h *History) RequireAcknowledged(keys ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		if !slices.Contains(h.acknowledged, k) {
			h.acknowledged = append(h.acknowledged, k)
		}
	}
}

// Observations returns a copy of the observations recorded so far.
func (h *History) Observations() []Observation {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Observation, len(h.observations))
	for i, o := range h.observations {
		o.Records = slices.Clone(o.Records)
		out[i] = o
	}
	return out
}

// Check returns nil if the history satisfies every invariant, and otherwise
// one error per violation, joined, in a stable order:
//
//  1. At most one node is primary in any epoch.
//  2. A node's epoch never decreases from one observation to the next.
//  3. Across the final observation of each node, a request key is completed
//     under at most one attempt, and all nodes agree on which node executed
//     it (an empty execution node is not counted).
//  4. Every key passed to RequireAcknowledged appears in the final
//     observation of at least one node.
func (h *History) Check() error {
	h.mu.Lock()
	observations := slices.Clone(h.observations)
	acknowledged := slices.Clone(h.acknowledged)
	h.mu.Unlock()

	var errs []error
	errs = append(errs, checkOnePrimaryPerEpoch(observations)...)
	errs = append(errs, checkEpochsNeverDecrease(observations)...)
	final := finalObservations(observations)
	errs = append(errs, checkSingleCompletion(final)...)
	errs = append(errs, checkAcknowledged(final, acknowledged)...)
	return errors.Join(errs...)
}

func checkOnePrimaryPerEpoch(observations []Observation) []error {
	primaries := make(map[uint64]map[string]bool)
	for _, o := range observations {
		if o.Role != "primary" {
			continue
		}
		if primaries[o.Epoch] == nil {
			primaries[o.Epoch] = make(map[string]bool)
		}
		primaries[o.Epoch][o.Node] = true
	}
	var errs []error
	for _, epoch := range slices.Sorted(maps.Keys(primaries)) {
		if nodes := primaries[epoch]; len(nodes) > 1 {
			errs = append(errs, fmt.Errorf("epoch %d has %d primaries: %s",
				epoch, len(nodes), strings.Join(slices.Sorted(maps.Keys(nodes)), ", ")))
		}
	}
	return errs
}

func checkEpochsNeverDecrease(observations []Observation) []error {
	var errs []error
	last := make(map[string]uint64)
	for i, o := range observations {
		if prev, seen := last[o.Node]; seen && o.Epoch < prev {
			errs = append(errs, fmt.Errorf("node %s epoch decreased from %d to %d (observation %d)",
				o.Node, prev, o.Epoch, i))
		}
		last[o.Node] = o.Epoch
	}
	return errs
}

// finalObservations returns the last observation of each node, by node name.
func finalObservations(observations []Observation) map[string]Observation {
	final := make(map[string]Observation)
	for _, o := range observations {
		final[o.Node] = o
	}
	return final
}

func checkSingleCompletion(final map[string]Observation) []error {
	// key → attempt → nodes reporting it completed; and
	// key → attempt → execution node → nodes reporting that.
	completed := make(map[string]map[string][]string)
	executors := make(map[string]map[string]map[string][]string)
	for _, node := range slices.Sorted(maps.Keys(final)) {
		for _, r := range final[node].Records {
			if r.Phase != phaseCompleted {
				continue
			}
			if completed[r.RequestKey] == nil {
				completed[r.RequestKey] = make(map[string][]string)
				executors[r.RequestKey] = make(map[string]map[string][]string)
			}
			completed[r.RequestKey][r.AttemptID] = append(completed[r.RequestKey][r.AttemptID], node)
			if r.ExecutionNode == "" {
				continue
			}
			if executors[r.RequestKey][r.AttemptID] == nil {
				executors[r.RequestKey][r.AttemptID] = make(map[string][]string)
			}
			executors[r.RequestKey][r.AttemptID][r.ExecutionNode] = append(executors[r.RequestKey][r.AttemptID][r.ExecutionNode], node)
		}
	}
	var errs []error
	for _, key := range slices.Sorted(maps.Keys(completed)) {
		attempts := completed[key]
		if len(attempts) > 1 {
			var parts []string
			for _, a := range slices.Sorted(maps.Keys(attempts)) {
				parts = append(parts, fmt.Sprintf("%s (on %s)", a, strings.Join(attempts[a], ", ")))
			}
			errs = append(errs, fmt.Errorf("request key %q completed under %d attempts: %s",
				key, len(attempts), strings.Join(parts, "; ")))
		}
		for _, a := range slices.Sorted(maps.Keys(executors[key])) {
			byExec := executors[key][a]
			if len(byExec) < 2 {
				continue
			}
			var parts []string
			for _, e := range slices.Sorted(maps.Keys(byExec)) {
				parts = append(parts, fmt.Sprintf("%s (on %s)", e, strings.Join(byExec[e], ", ")))
			}
			errs = append(errs, fmt.Errorf("request key %q attempt %s completed by different execution nodes: %s",
				key, a, strings.Join(parts, "; ")))
		}
	}
	return errs
}

func checkAcknowledged(final map[string]Observation, acknowledged []string) []error {
	present := make(map[string]bool)
	for _, o := range final {
		for _, r := range o.Records {
			present[r.RequestKey] = true
		}
	}
	var errs []error
	for _, key := range acknowledged {
		if !present[key] {
			errs = append(errs, fmt.Errorf("acknowledged request key %q is missing from the final observation of every node", key))
		}
	}
	return errs
}
