package main

import (
	"context"

	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"meshgo.dev/mesh"
	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/operator"
	"meshgo.dev/mesh/internal/wire"
)

// PairReport is the JSON document of `meshc cluster status A B --json`:
// both views, in the order given, whether the pair agrees, and every problem
// found (empty when it agrees). Keys are in alphabetical order, like every
// operator document.
type PairReport struct {
	Agree    bool       `json:"agree"`
	Problems []string   `json:"problems"`
	Views    []PairView `json:"views"`
}

// PairView is one node's answer: its status document, or the error that
// kept it from answering (exactly one of the two is null).
type PairView struct {
	Error  *string          `json:"error"`
	Status *operator.Status `json:"status"`
	Target string           `json:"target"`
}

// runPair queries two nodes at once and checks that they form a healthy
// pair. It prints both views, then the verdict, and returns nil when the pair
// agrees; an *exitError with exitDisagree when it does not (or one node did
// not answer); and the first node's error when neither answered.
func runPair(ctx context.Context, o clusterOptions, second string, stdout, stderr io.Writer, lookupEnv func(string) (string, bool)) error {
	nodes := []string{o.node, second}
	targets := make([]mesh.NodeName, len(nodes))
	for i, node := range nodes {
		t, err := mesh.ParseTarget(node)
		if err != nil {
			return &operator.QueryError{Kind: operator.KindStatus, Target: node, Failure: operator.FailureInvalid, Err: err}
		}
		targets[i] = t
	}
	if targets[0].String() == targets[1].String() {
		return usageError(fmt.Errorf("meshc cluster status: %s is given twice; a pair check needs two different nodes", nodes[0]))
	}
	cookie, err := o.cookieFor(stderr, lookupEnv)
	if err != nil {
		return err
	}

	statuses := make([]*operator.Status, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			report, err := queryReport(ctx, targets[i], cookie, wire.OperatorQuery{Kind: uint8(operator.KindStatus)}, o.timeout(), nodes[i])
			if err != nil {
				errs[i] = err
				return
			}
			statuses[i] = report.(*operator.Status)
		})
	}
	wg.Wait()
	if errs[0] != nil && errs[1] != nil {
		return errs[0]
	}

	rep := PairReport{Problems: checkPair(nodes, statuses, errs)}
	rep.Agree = len(rep.Problems) == 0
	if rep.Problems == nil {
		rep.Problems = []string{} // never null in the JSON
	}
	for i, node := range nodes {
		v := PairView{Target: node, Status: statuses[i]}
		if errs[i] != nil {
			msg := errs[i].Error()
			v.Error = &msg
		}
		rep.Views = append(rep.Views, v)
	}
	if o.json {
		if err := operator.WriteJSON(stdout, rep); err != nil {
			return err
		}
	} else if err := rep.writeText(stdout); err != nil {
		return err
	}
	if !rep.Agree {
		return &exitError{code: exitDisagree, err: fmt.Errorf("meshc cluster status: the pair disagrees: %s", strings.Join(rep.Problems, "; "))}
	}
	return nil
}

// checkPair lists what is wrong with the pair; nothing when it agrees:
// both answered, exactly one is primary, both are at the same promotion
// epoch, each lists the other as a connected peer, and both are healthy and
// ready. Problems are "<reason>" or "<reason>:<detail>" strings.
func checkPair(nodes []string, st []*operator.Status, errs []error) []string {
	var problems []string
	for i, err := range errs {
		if err != nil {
			reason := "no_answer"
			switch exitCode(err) {
			case exitUnreachable:
				reason = "unreachable"
			case exitAuth:
				reason = "authentication_failed"
			}
			problems = append(problems, reason+":"+nodes[i])
		}
	}
	if len(problems) > 0 {
		return problems
	}
	a, b := st[0], st[1]
	if a.Membership.LocalNode == b.Membership.LocalNode {
		return []string{"same_node:" + a.Membership.LocalNode}
	}
	switch primaries := countPrimaries(a, b); primaries {
	case 0:
		problems = append(problems, "no_primary")
	case 2:
		problems = append(problems, "two_primaries")
	}
	if a.Authority.PromotionEpoch != b.Authority.PromotionEpoch {
		problems = append(problems, fmt.Sprintf("epoch_mismatch:%s=%d,%s=%d",
			nodes[0], a.Authority.PromotionEpoch, nodes[1], b.Authority.PromotionEpoch))
	}
	for i, s := range st {
		other := st[1-i].Membership.LocalNode
		if !slices.Contains(s.Membership.PeerNodes, other) {
			problems = append(problems, fmt.Sprintf("not_connected:%s->%s", nodes[i], other))
		}
	}
	for i, s := range st {
		if h := s.Authority.ReplicationHealth; h != continuity.HealthHealthy {
			problems = append(problems, fmt.Sprintf("replication_health:%s=%s", nodes[i], h))
		}
		if r := s.Readiness; r != nil && !r.Ready {
			problems = append(problems, fmt.Sprintf("not_ready:%s=%s", nodes[i], deref(r.Reason)))
		}
	}
	return problems
}

func countPrimaries(ss ...*operator.Status) int {
	n := 0
	for _, s := range ss {
		if s.Authority.ClusterRole == continuity.RolePrimary {
			n++
		}
	}
	return n
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// writeText prints each view under a "== <node> ==" heading (the node's
// error instead when it did not answer), then the verdict.
func (r *PairReport) writeText(w io.Writer) error {
	var b strings.Builder
	for _, v := range r.Views {
		fmt.Fprintf(&b, "== %s ==\n", v.Target)
		if v.Status == nil {
			fmt.Fprintf(&b, "error: %s\n\n", deref(v.Error))
			continue
		}
		if err := v.Status.WriteText(&b); err != nil {
			return err
		}
		b.WriteString("\n")
	}
	if r.Agree {
		b.WriteString("pair: agrees\n")
	} else {
		b.WriteString("pair: disagrees\n")
		for _, p := range r.Problems {
			b.WriteString("  - " + p + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
