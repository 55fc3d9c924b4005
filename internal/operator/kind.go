package operator

import "strconv"

// Kind selects an operator query. Its values travel as wire.OperatorQuery.Kind,
// so they never change.
type Kind uint8

// Query kinds.
const (
	KindStatus           Kind = 0 // node status: membership and authority
	KindContinuityLookup Kind = 1 // one continuity record by request key
	KindContinuityList   Kind = 2 // all continuity records, optionally limited
	KindDiagnostics      Kind = 3 // the diagnostics ring, optionally limited
	KindSwitchover       Kind = 4 // hand the primary role to the standby named by RequestKey (any when empty)
)

// String returns the name used in messages: status, continuity_lookup,
// continuity_list, diagnostics or switchover; unknown kinds print as kind_<n>.
func (k Kind) String() string {
	switch k {
	case KindStatus:
		return "status"
	case KindContinuityLookup:
		return "continuity_lookup"
	case KindContinuityList:
		return "continuity_list"
	case KindDiagnostics:
		return "diagnostics"
	case KindSwitchover:
		return "switchover"
	}
	return "kind_" + strconv.Itoa(int(k))
}

// Valid reports whether k is one of the defined query kinds.
func (k Kind) Valid() bool { return k <= KindSwitchover }
