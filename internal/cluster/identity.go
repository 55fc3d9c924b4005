package cluster

import (
	"context"

	"meshgo.dev/mesh/internal/continuity"
)

// Identity is the continuity identity of one execution of declared work or of a
// clustered route. Pass Epoch downstream as a fencing token: a write carrying a
// lower epoch than one already seen comes from a superseded primary.
type Identity struct {
	RequestKey string
	AttemptID  string
	Epoch      uint64
}

type identityKey struct{}

// identityCtx carries the identity of one execution: one allocation where
// context.WithValue would take two, and the attempt id is only rendered for
// a handler that asks for it.
type identityCtx struct {
	context.Context
	node    *Node // the node running the execution
	key     string
	attempt uint64
	epoch   uint64

	// header is the value of a clustered route's response header
	// X-Mesh-Continuity-Request-Key, kept here so the header's value slice
	// shares this allocation (see routeIdentity).
	header [1]string
}

func (c *identityCtx) Value(key any) any {
	switch key.(type) {
	case identityKey:
		return c
	case nodeKey:
		return c.node
	}
	return c.Context.Value(key)
}

// IdentityFrom returns the continuity identity carried by ctx. It is present in
// the context of every declared work function and clustered route handler.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	if c, ok := ctx.Value(identityKey{}).(*identityCtx); ok {
		return Identity{RequestKey: c.key, AttemptID: continuity.FormatAttempt(c.attempt), Epoch: c.epoch}, true
	}
	return Identity{}, false
}

// withIdentity returns ctx carrying the identity of rec's current attempt,
// run by n.
func withIdentity(ctx context.Context, n *Node, rec *continuity.Record) context.Context {
	return &identityCtx{Context: ctx, node: n, key: rec.RequestKey, attempt: rec.Attempt, epoch: rec.Epoch}
}

// routeIdentity returns the identity context of a clustered route's request
// keyed key, made before the record exists so that the response header
// naming the key can use its header field: the attempt and epoch are set
// (setRecord) before the handler gets the context.
func routeIdentity(ctx context.Context, n *Node, key string) *identityCtx {
	c := &identityCtx{Context: ctx, node: n, key: key}
	c.header[0] = key
	return c
}

// setRecord makes c the identity of rec's current attempt.
func (c *identityCtx) setRecord(rec *continuity.Record) {
	c.key, c.attempt, c.epoch = rec.RequestKey, rec.Attempt, rec.Epoch
}

// keyHeader is the value of the request-key header of c's response. Its
// capacity is its length, so adding a value copies it.
func (c *identityCtx) keyHeader() []string { return c.header[:1:1] }

type nodeKey struct{}

// WithNode returns ctx carrying n as the node serving it: a clustered route
// served with ctx, and typed work submitted with ctx and no node, use n
// instead of the process's default node. The runtime sets it itself in the
// context of every execution; the test kit sets it on the requests it
// serves through one node of an in-process pair.
func WithNode(ctx context.Context, n *Node) context.Context {
	return context.WithValue(ctx, nodeKey{}, n)
}

// NodeFor returns the node ctx carries (see WithNode), or the process's
// default node when it carries none.
func NodeFor(ctx context.Context) *Node {
	if n, ok := ctx.Value(nodeKey{}).(*Node); ok && n != nil {
		return n
	}
	return Default()
}
