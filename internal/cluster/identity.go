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
	key     string
	attempt uint64
	epoch   uint64
}

func (c *identityCtx) Value(key any) any {
	if _, ok := key.(identityKey); ok {
		return c
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

// withIdentity returns ctx carrying the identity of rec's current attempt.
func withIdentity(ctx context.Context, rec *continuity.Record) context.Context {
	return &identityCtx{Context: ctx, key: rec.RequestKey, attempt: rec.Attempt, epoch: rec.Epoch}
}
