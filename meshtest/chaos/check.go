package chaos

import (
	"cmp"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Violation classes. Each names one promise of the runtime.
const (
	// ClassLostAck: a client was told its request was accepted, and after
	// the heal no node holds it completed under an acknowledged attempt (or
	// the acknowledged execution never ran).
	ClassLostAck = "acknowledged_then_lost"
	// ClassDoubleExecution: one attempt of one key executed more than once.
	ClassDoubleExecution = "same_attempt_executed_twice"
	// ClassReplayMismatch: two 2xx answers of a route for one key and one
	// payload carry different bodies.
	ClassReplayMismatch = "replay_mismatch"
	// ClassEmptyReason: a refusal (non-2xx, or a Submit rejection) without a
	// non-empty reason.
	ClassEmptyReason = "refusal_without_reason"
	// ClassHung: no answer within History.HungBound from a node that was
	// neither frozen nor killed meanwhile.
	ClassHung = "hung_request"
	// ClassTwoPrimaries: two nodes reported primary at one epoch.
	ClassTwoPrimaries = "two_primaries_in_epoch"
	// ClassEpochDecrease: a node reported a lower epoch than before.
	ClassEpochDecrease = "epoch_decreased"
	// ClassDisagreement: after the heal the nodes hold different versions of
	// a record (any field but the local cluster_role), or only one holds it.
	ClassDisagreement = "records_disagree"
	// ClassNotQuiesced: the pair did not re-form after a fault, or records
	// were still pending when the quiesce bound ran out.
	ClassNotQuiesced = "not_quiesced"
)

// Violation is one broken promise, with the evidence.
type Violation struct {
	Class  string
	Key    string // "" for node-level violations
	Detail string
}

func (v Violation) String() string {
	if v.Key == "" {
		return v.Class + ": " + v.Detail
	}
	return fmt.Sprintf("%s key=%s: %s", v.Class, v.Key, v.Detail)
}

// Report is the outcome of Check: the figures of the run and every
// violation, in a stable order.
type Report struct {
	Ops             int
	Acknowledged    int            // acknowledged answers
	AckedKeys       map[string]int // kind → keys with at least one acknowledged answer
	TransportErrors int            // no HTTP answer, not a timeout (a dead node)
	Refusals        int            // refusals that carried a reason
	// ReRuns counts executions under a new attempt of a key that had
	// already run, by kind: where the docs allow them (work after a
	// failover or during a partition) they are not violations.
	ReRuns map[string]int
	// Route1Lost counts Clustered(1) requests whose completed record no
	// node holds because its only node was killed right after answering: a
	// count-1 record reaches the peer when it ends, batched (within 10 ms).
	// The answer was an execution (it is in the side-effect log); the docs
	// say a retry of such a key runs again (or is refused while its owner is
	// unreachable, which is the record the pair may then keep). Not a
	// violation.
	Route1Lost int
	Executions int
	Faults     int
	Violations []Violation
}

// Count returns the number of violations of class.
func (r Report) Count(class string) int {
	n := 0
	for _, v := range r.Violations {
		if v.Class == class {
			n++
		}
	}
	return n
}

// OK reports whether the history has no violation.
func (r Report) OK() bool { return len(r.Violations) == 0 }

// Summary is the one-line figure summary a soak prints last.
func (r Report) Summary(seed int64) string {
	result := "PASS"
	if !r.OK() {
		result = "FAIL"
	}
	reruns := 0
	for _, n := range r.ReRuns {
		reruns += n
	}
	return fmt.Sprintf("chaos summary: result=%s ops=%d acknowledged=%d lost=%d reruns=%d (route2=%d route1=%d work=%d) "+
		"double_executions=%d replay_mismatches=%d empty_reasons=%d disagreeing_records=%d hung=%d "+
		"two_primaries=%d epoch_decreases=%d not_quiesced=%d route1_lost_with_node=%d faults=%d seed=%d",
		result, r.Ops, r.Acknowledged, r.Count(ClassLostAck), reruns, r.ReRuns[KindRoute2], r.ReRuns[KindRoute1], r.ReRuns[KindWork],
		r.Count(ClassDoubleExecution), r.Count(ClassReplayMismatch), r.Count(ClassEmptyReason), r.Count(ClassDisagreement), r.Count(ClassHung),
		r.Count(ClassTwoPrimaries), r.Count(ClassEpochDecrease), r.Count(ClassNotQuiesced), r.Route1Lost, r.Faults, seed)
}

// ClientKey returns the key a client sent for a request key: a clustered
// route scopes a client's Idempotency-Key by route and caller
// (http-route::<route>::caller-<tag>::<key>), while declared work and
// startup work use the key as it was given.
func ClientKey(requestKey string) string {
	rest, ok := strings.CutPrefix(requestKey, "http-route::")
	if !ok {
		return requestKey
	}
	if _, scoped, ok := strings.Cut(rest, "::caller-"); ok {
		if _, key, ok := strings.Cut(scoped, "::"); ok {
			return key
		}
	}
	return requestKey
}

// kindKey identifies one client key of one kind.
type kindKey struct{ kind, key string }

func (k kindKey) String() string { return k.kind + ":" + k.key }

// Check runs every check over h. Keys of startup work (startup::…) are the
// runtime's own and take part only in the record agreement check.
func Check(h History) Report {
	h.Effects = slices.Clone(h.Effects)
	for i := range h.Effects {
		h.Effects[i].Key = ClientKey(h.Effects[i].Key)
	}
	r := Report{Ops: len(h.Ops), AckedKeys: map[string]int{}, ReRuns: map[string]int{}, Faults: len(h.Faults)}
	for _, o := range h.Ops {
		switch {
		case o.Acknowledged():
			r.Acknowledged++
		case !o.Answered() && !o.Timeout:
			r.TransportErrors++
		case o.refusal() && o.Reason != "":
			r.Refusals++
		}
	}
	r.Violations = append(r.Violations, checkLostAcks(h, &r)...)
	r.Violations = append(r.Violations, checkExecutions(h, &r)...)
	r.Violations = append(r.Violations, checkReplays(h)...)
	r.Violations = append(r.Violations, checkReasons(h)...)
	r.Violations = append(r.Violations, checkHung(h)...)
	r.Violations = append(r.Violations, checkAuthority(h)...)
	r.Violations = append(r.Violations, checkAgreement(h)...)
	r.Violations = append(r.Violations, checkQuiesced(h)...)
	return r
}

// finalByKey indexes the final records: key → node → record.
func finalByKey(h History) map[string]map[string]Record {
	out := map[string]map[string]Record{}
	for node, recs := range h.Final {
		for _, rec := range recs {
			k := ClientKey(rec.Str("request_key"))
			if out[k] == nil {
				out[k] = map[string]Record{}
			}
			out[k][node] = rec
		}
	}
	return out
}

// documentedRerun reports whether two 2xx answers of one key under different
// attempts are a re-run the docs allow rather than a broken replay:
//   - either request was served during a cut of the cluster link (or
//     before the pair had re-formed after it): both sides of a partition
//     serve, and the version kept at the heal may be either side's;
//   - the first answer came from a Clustered(1) request whose node was
//     killed before the second was asked: its record died with it;
//   - both are Clustered(1) answers and either was served while a killed
//     node was down or restarted but not yet linked to its peer again
//     (from the kill until the runner saw the pair formed): with the link
//     down each node serves a count-1 route alone, as during a cut.
func documentedRerun(h History, first, later Op) bool {
	within := func(from, to time.Time) bool {
		for _, o := range []Op{first, later} {
			if !o.Start.Before(from) && o.Start.Before(to) {
				return true
			}
		}
		return false
	}
	for _, f := range h.Faults {
		kill := strings.HasPrefix(f.Kind, "kill-")
		switch {
		case f.Kind == FaultPartition:
			if within(f.Start, f.End.Add(h.HungBound)) {
				return true
			}
		case first.Kind == KindRoute1 && kill &&
			!f.Start.Before(first.Start) && f.Start.Before(later.Start) && ranOn(h, first) == f.Node:
			return true
		case first.Kind == KindRoute1 && later.Kind == KindRoute1 && kill && !f.Formed.IsZero() &&
			within(f.Start, f.Formed):
			return true
		}
	}
	return false
}

// ranOn returns the node whose execution answered o, from the side-effect
// log ("" if none is recorded).
func ranOn(h History, o Op) string {
	for _, e := range h.Effects {
		if e.Kind == o.Kind && e.Key == o.Key && e.Attempt == o.Attempt {
			return e.Node
		}
	}
	return ""
}

// route1LossWindow is how soon after an acknowledged Clustered(1) answer
// the death of the node that ran it may take the record with it: the record
// is sent to the peer within 10 ms of ending; the window leaves room for a
// loaded machine.
const route1LossWindow = time.Second

// lostWithItsNode reports whether every acknowledged execution of k ran on a
// node that was killed within route1LossWindow of the answer.
func lostWithItsNode(h History, k kindKey, ops []Op) bool {
	ranOn := map[string]string{} // attempt → node
	for _, e := range h.Effects {
		if e.Kind == k.kind && e.Key == k.key {
			ranOn[e.Attempt] = e.Node
		}
	}
	for _, o := range ops {
		node := ranOn[o.Attempt]
		killed := false
		for _, f := range h.Faults {
			if f.Node == node && strings.HasPrefix(f.Kind, "kill-") &&
				!f.Start.Before(o.End.Add(-route1LossWindow)) && f.Start.Before(o.End.Add(route1LossWindow)) {
				killed = true
			}
		}
		if node == "" || !killed {
			return false
		}
	}
	return true
}

func describeRecords(byNode map[string]Record) string {
	if len(byNode) == 0 {
		return "no node holds a record"
	}
	var parts []string
	for _, n := range slices.Sorted(maps.Keys(byNode)) {
		rec := byNode[n]
		parts = append(parts, fmt.Sprintf("%s holds %s/%s owner=%s exec=%s error=%q",
			n, rec.Str("phase"), rec.Str("attempt_id"), rec.Str("owner_node"), rec.Str("execution_node"), rec.Str("error")))
	}
	return strings.Join(parts, "; ")
}

func describeOp(o Op) string {
	s := fmt.Sprintf("client %d asked %s at %s: ", o.Client, o.Node, o.Start.Format("15:04:05.000"))
	switch {
	case o.Timeout:
		return s + "no answer (timeout)"
	case !o.Answered():
		return s + "transport error " + o.Err
	case o.Kind == KindWork:
		return s + fmt.Sprintf("%d outcome=%s phase=%s %s reason=%q", o.Status, o.Outcome, o.Phase, o.Attempt, o.Reason)
	case o.Status < 300:
		return s + fmt.Sprintf("%d %s", o.Status, o.Attempt)
	default:
		return s + fmt.Sprintf("%d reason=%q", o.Status, o.Reason)
	}
}

func checkLostAcks(h History, r *Report) []Violation {
	final := finalByKey(h)
	executed := map[kindKey]map[string]bool{} // → attempts that ran
	for _, e := range h.Effects {
		k := kindKey{e.Kind, e.Key}
		if executed[k] == nil {
			executed[k] = map[string]bool{}
		}
		executed[k][e.Attempt] = true
	}
	acked := map[kindKey][]Op{}
	for _, o := range h.Ops {
		if o.Acknowledged() {
			k := kindKey{o.Kind, o.Key}
			acked[k] = append(acked[k], o)
		}
	}
	var out []Violation
	for _, k := range slices.SortedFunc(maps.Keys(acked), func(a, b kindKey) int { return cmp.Compare(a.String(), b.String()) }) {
		ops := acked[k]
		r.AckedKeys[k.kind]++
		recs := final[k.key]
		var problem string
		if k.kind == KindWork {
			// Work may be re-run under a new attempt; what must hold is
			// that it completed, and that its completion really ran.
			completedAttempt := ""
			for _, rec := range recs {
				if rec.Str("phase") == phaseCompleted {
					completedAttempt = rec.Str("attempt_id")
				}
			}
			switch {
			case completedAttempt == "":
				problem = "no node holds it completed"
			case !executed[k][completedAttempt]:
				problem = "completed under " + completedAttempt + ", which never executed"
			}
		} else {
			// A route's acknowledged answer is an execution: the record
			// must keep exactly that execution as the outcome.
			ackAttempts := map[string]bool{}
			for _, o := range ops {
				ackAttempts[o.Attempt] = true
			}
			kept := false
			for _, rec := range recs {
				if rec.Str("phase") == phaseCompleted && ackAttempts[rec.Str("attempt_id")] {
					kept = true
				}
			}
			var never []string
			for _, a := range slices.Sorted(maps.Keys(ackAttempts)) {
				if !executed[k][a] {
					never = append(never, a)
				}
			}
			switch {
			case !kept && k.kind == KindRoute1 && len(never) == 0 && lostWithItsNode(h, k, ops):
				r.Route1Lost++
			case !kept:
				problem = "no node holds it completed under an acknowledged attempt"
			case len(never) > 0:
				problem = "acknowledged " + strings.Join(never, ",") + " never executed"
			}
		}
		if problem == "" {
			continue
		}
		var seen []string
		for _, o := range ops {
			seen = append(seen, describeOp(o))
		}
		out = append(out, Violation{Class: ClassLostAck, Key: k.String(), Detail: fmt.Sprintf("%s; acknowledged: %s; final: %s",
			problem, strings.Join(seen, " | "), describeRecords(recs))})
	}
	return out
}

func checkExecutions(h History, r *Report) []Violation {
	type attemptKey struct {
		k       kindKey
		attempt string
	}
	runs := map[attemptKey][]Effect{}
	attempts := map[kindKey]map[string]bool{}
	for _, e := range h.Effects {
		if strings.HasPrefix(e.Key, "startup::") {
			continue
		}
		r.Executions++
		k := kindKey{e.Kind, e.Key}
		runs[attemptKey{k, e.Attempt}] = append(runs[attemptKey{k, e.Attempt}], e)
		if attempts[k] == nil {
			attempts[k] = map[string]bool{}
		}
		attempts[k][e.Attempt] = true
	}
	for k, as := range attempts {
		r.ReRuns[k.kind] += len(as) - 1
	}
	var out []Violation
	keys := slices.SortedFunc(maps.Keys(runs), func(a, b attemptKey) int {
		return cmp.Or(cmp.Compare(a.k.String(), b.k.String()), cmp.Compare(a.attempt, b.attempt))
	})
	for _, ak := range keys {
		es := runs[ak]
		if len(es) < 2 {
			continue
		}
		var parts []string
		epochs := map[uint64]bool{}
		for _, e := range es {
			parts = append(parts, fmt.Sprintf("%s at epoch %d at %s", e.Node, e.Epoch, e.Time.Format("15:04:05.000")))
			epochs[e.Epoch] = true
		}
		same := "at one epoch"
		if len(epochs) > 1 {
			same = "at different epochs"
		}
		out = append(out, Violation{Class: ClassDoubleExecution, Key: ak.k.String(),
			Detail: fmt.Sprintf("%s executed %d times %s: %s", ak.attempt, len(es), same, strings.Join(parts, "; "))})
	}
	return out
}

func checkReplays(h History) []Violation {
	type replayKey struct {
		k       kindKey
		payload string
	}
	first := map[replayKey]Op{}
	reported := map[replayKey]bool{}
	var out []Violation
	for _, o := range h.Ops {
		if o.Kind == KindWork || o.Status < 200 || o.Status > 299 {
			continue
		}
		rk := replayKey{kindKey{o.Kind, o.Key}, o.Payload}
		f, ok := first[rk]
		if !ok {
			first[rk] = o
			continue
		}
		if f.BodyHash == o.BodyHash || reported[rk] {
			continue
		}
		if f.Attempt != o.Attempt && documentedRerun(h, f, o) {
			continue // a re-run the docs allow: counted in reruns, not a replay
		}
		reported[rk] = true
		out = append(out, Violation{Class: ClassReplayMismatch, Key: rk.k.String(),
			Detail: fmt.Sprintf("first %s body %s; later %s body %s", describeOp(f), strings.TrimSpace(f.Body), describeOp(o), strings.TrimSpace(o.Body))})
	}
	return out
}

func checkReasons(h History) []Violation {
	var out []Violation
	for _, o := range h.Ops {
		if o.refusal() && strings.TrimSpace(o.Reason) == "" {
			out = append(out, Violation{Class: ClassEmptyReason, Key: kindKey{o.Kind, o.Key}.String(),
				Detail: describeOp(o) + " body " + strings.TrimSpace(o.Body)})
		}
	}
	return out
}

// excused reports whether a fault made node unable to answer during
// [start, end]: it was frozen or killed meanwhile.
func excused(h History, node string, start, end time.Time) bool {
	for _, f := range h.Faults {
		if f.Node != node || f.Kind == FaultPartition {
			continue
		}
		if !start.After(f.End) && !end.Before(f.Start) {
			return true
		}
	}
	return false
}

func checkHung(h History) []Violation {
	var out []Violation
	for _, o := range h.Ops {
		if !o.Timeout || excused(h, o.Node, o.Start, o.End) {
			continue
		}
		out = append(out, Violation{Class: ClassHung, Key: kindKey{o.Kind, o.Key}.String(),
			Detail: fmt.Sprintf("%s; bound %v", describeOp(o), h.HungBound)})
	}
	return out
}

func checkAuthority(h History) []Violation {
	var out []Violation
	obs := slices.Clone(h.Status)
	slices.SortStableFunc(obs, func(a, b StatusObs) int { return a.Time.Compare(b.Time) })
	primaries := map[uint64]map[string]time.Time{}
	// highest holds, per node, the observation with the highest epoch among
	// those answered so far; a later query that reports less is a decrease
	// only if it was asked after that answer came back.
	highest := map[string]StatusObs{}
	for _, o := range obs {
		if o.Role == "primary" {
			if primaries[o.Epoch] == nil {
				primaries[o.Epoch] = map[string]time.Time{}
			}
			if _, ok := primaries[o.Epoch][o.Node]; !ok {
				primaries[o.Epoch][o.Node] = o.Time
			}
		}
		if prev, ok := highest[o.Node]; ok && o.Epoch < prev.Epoch && o.Asked.After(prev.Time) {
			out = append(out, Violation{Class: ClassEpochDecrease, Detail: fmt.Sprintf("%s reported epoch %d (asked %s) after epoch %d (answered %s)",
				o.Node, o.Epoch, o.Asked.Format("15:04:05.000"), prev.Epoch, prev.Time.Format("15:04:05.000"))})
		}
		if prev, ok := highest[o.Node]; !ok || o.Epoch >= prev.Epoch {
			highest[o.Node] = o
		}
	}
	for _, epoch := range slices.Sorted(maps.Keys(primaries)) {
		nodes := primaries[epoch]
		if len(nodes) < 2 {
			continue
		}
		var parts []string
		for _, n := range slices.Sorted(maps.Keys(nodes)) {
			parts = append(parts, fmt.Sprintf("%s (first at %s)", n, nodes[n].Format("15:04:05.000")))
		}
		out = append(out, Violation{Class: ClassTwoPrimaries, Detail: fmt.Sprintf("epoch %d: %s", epoch, strings.Join(parts, ", "))})
	}
	return out
}

// localFields are the record fields that describe the answering node, not
// the record: they may differ between the nodes.
var localFields = map[string]bool{"cluster_role": true}

func checkAgreement(h History) []Violation {
	nodes := slices.Sorted(maps.Keys(h.Final))
	if len(nodes) < 2 {
		return nil
	}
	final := finalByKey(h)
	var out []Violation
	for _, key := range slices.Sorted(maps.Keys(final)) {
		byNode := final[key]
		var missing []string
		for _, n := range nodes {
			if _, ok := byNode[n]; !ok {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			out = append(out, Violation{Class: ClassDisagreement, Key: key,
				Detail: fmt.Sprintf("missing on %s; %s", strings.Join(missing, ", "), describeRecords(byNode))})
			continue
		}
		a, b := byNode[nodes[0]], byNode[nodes[1]]
		fields := map[string]bool{}
		for f := range a {
			fields[f] = true
		}
		for f := range b {
			fields[f] = true
		}
		var diffs []string
		for _, f := range slices.Sorted(maps.Keys(fields)) {
			if localFields[f] || reflect.DeepEqual(a[f], b[f]) {
				continue
			}
			diffs = append(diffs, fmt.Sprintf("%s: %v vs %v", f, a[f], b[f]))
		}
		if len(diffs) > 0 {
			out = append(out, Violation{Class: ClassDisagreement, Key: key,
				Detail: fmt.Sprintf("%s vs %s: %s", nodes[0], nodes[1], strings.Join(diffs, "; "))})
		}
	}
	return out
}

func checkQuiesced(h History) []Violation {
	var out []Violation
	for _, f := range h.Faults {
		if !f.Reformed {
			out = append(out, Violation{Class: ClassNotQuiesced, Detail: fmt.Sprintf("pair did not re-form after %s of %s at %s %s",
				f.Kind, f.Node, f.Start.Format("15:04:05.000"), f.Detail)})
		}
	}
	if !h.Quiesced {
		out = append(out, Violation{Class: ClassNotQuiesced, Detail: "the pair did not settle (both connected, no pending record) before the quiesce bound: " + h.QuiesceNote})
	}
	for _, n := range slices.Sorted(maps.Keys(h.Final)) {
		for _, rec := range h.Final[n] {
			if rec.Str("phase") == phaseSubmitted {
				out = append(out, Violation{Class: ClassNotQuiesced, Key: rec.Str("request_key"),
					Detail: fmt.Sprintf("still pending on %s at the end: %s owner=%s", n, rec.Str("attempt_id"), rec.Str("owner_node"))})
			}
		}
	}
	return out
}
