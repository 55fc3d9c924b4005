package handshake

import "strconv"

// Kind says what a connecting process is. It travels in the handshake and
// is covered by both proofs, so neither side can be misled about the other's.
type Kind uint8

// Kinds. The zero Kind is invalid, so a Config that forgets to set one fails
// instead of silently joining the cluster.
const (
	// KindNode is a cluster member.
	KindNode Kind = iota + 1
	// KindOperator is an operator client (meshc); never a member.
	KindOperator
	// KindRoute is reserved for short-lived route-forwarding clients; never a
	// member.
	KindRoute
)

// String returns "node", "operator", "route", or "kind(N)" for other values.
func (k Kind) String() string {
	switch k {
	case KindNode:
		return "node"
	case KindOperator:
		return "operator"
	case KindRoute:
		return "route"
	default:
		return "kind(" + strconv.Itoa(int(k)) + ")"
	}
}

func (k Kind) valid() bool { return k >= KindNode && k <= KindRoute }
