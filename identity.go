package mesh

import (
	"context"

	"meshgo.dev/mesh/internal/continuity"
)

// Role is a node's authority role: RolePrimary or RoleStandby.
type Role = continuity.Role

// Roles.
const (
	RolePrimary = continuity.RolePrimary
	RoleStandby = continuity.RoleStandby
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

// identityCtx carries an Identity: one allocation where context.WithValue
// would take two.
type identityCtx struct {
	context.Context
	id Identity
}

func (c *identityCtx) Value(key any) any {
	if _, ok := key.(identityKey); ok {
		return &c.id
	}
	return c.Context.Value(key)
}

// IdentityFrom returns the continuity identity carried by ctx. It is present in
// the context of every declared work function and clustered route handler.
func IdentityFrom(ctx context.Context) (Identity, bool) {
	if id, ok := ctx.Value(identityKey{}).(*Identity); ok {
		return *id, true
	}
	return Identity{}, false
}

func withIdentity(ctx context.Context, id Identity) context.Context {
	return &identityCtx{Context: ctx, id: id}
}
