// Package postgres is the arbiter.Arbiter whose store is one row per cluster
// in the PostgreSQL table mesh_authority, reached through pgx:
//
//	CREATE TABLE mesh_authority (
//	    cluster    text PRIMARY KEY,
//	    holder     text NOT NULL DEFAULT '',     -- '' when free
//	    epoch      bigint NOT NULL DEFAULT 0,    -- the fencing token
//	    expires_at timestamptz NOT NULL DEFAULT now(),
//	    updated_at timestamptz NOT NULL DEFAULT now()
//	)
//
// Open creates the table when it is missing and the cluster's row at epoch 0.
// Every change of the lease is one conditional UPDATE of that row, so
// PostgreSQL's row lock decides between two nodes that race. With $me the
// caller, $seen the epoch it has seen and $e its lease's epoch:
//
//	Acquire: SET holder = $me, epoch = $seen + 1, expires_at = now() + TTL
//	         WHERE epoch <= $seen
//	           AND (holder = $me OR holder = '' OR expires_at <= now())
//	Renew:   SET expires_at = now() + TTL WHERE holder = $me AND epoch = $e
//	Release: SET holder = '', expires_at = now()
//	         WHERE holder = $me AND epoch = $e
//
// Expiry is compared and set on the database's clock only (now(), the start
// of the statement's transaction, which is after the client sent it); the
// client's clock sets only its local deadline, from the moment it sent the
// statement. The package imports pgx and internal/arbiter only.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"meshgo.dev/mesh/internal/arbiter"
)

// Config is what Open needs. URL is postgres://... or postgresql://...;
// Cluster names the cluster's row of mesh_authority.
type Config = arbiter.Config

// Arbiter is a client of the mesh_authority row of one cluster. It is safe
// for concurrent use; Close releases its connections (not the lease).
type Arbiter struct {
	pool      *pgxpool.Pool
	url       string // for scrubbing errors
	cluster   string
	timing    arbiter.Timing
	ttlMicros int64
	opTimeout time.Duration
	now       func() time.Time
}

var _ arbiter.Arbiter = (*Arbiter)(nil)

// Open connects to the database, creates mesh_authority when it is missing
// and the cluster's row when it has none. It fails with an error matching
// arbiter.ErrUnavailable when the database cannot be reached or refuses the
// credentials, and with a plain error for a bad Config.
func Open(ctx context.Context, cfg Config) (*Arbiter, error) {
	cfg, err := cfg.WithDefaults(arbiter.KindPostgres)
	if err != nil {
		return nil, err
	}
	dsn := string(cfg.URL)
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return nil, fmt.Errorf("postgres arbiter: connection string %s: want postgres:// or postgresql://", cfg.URL)
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres arbiter: connection string %s: %s", cfg.URL, arbiter.Scrub(err.Error(), dsn))
	}
	pc.MaxConns = 4
	pc.ConnConfig.ConnectTimeout = cfg.OpTimeout
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres arbiter: %s", arbiter.Scrub(err.Error(), dsn))
	}
	a := &Arbiter{
		pool: pool, url: dsn, cluster: cfg.Cluster, timing: cfg.Timing,
		ttlMicros: cfg.Timing.TTL.Microseconds(), opTimeout: cfg.OpTimeout, now: cfg.Now,
	}
	if err := a.ensure(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the connections. The lease is left to expire, or to be
// released by Release before Close.
func (a *Arbiter) Close() { a.pool.Close() }

// schemaLock serialises creating the table between clients opening at once.
const schemaLock = 0x6d657368 // "mesh"

const createTable = `CREATE TABLE IF NOT EXISTS mesh_authority (
	cluster    text PRIMARY KEY,
	holder     text NOT NULL DEFAULT '',
	epoch      bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
	expires_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
)`

// ensure creates the table when missing and the cluster's row. Clients
// that open at once on a database without the table serialise on an
// advisory lock; one that still finds the table created meanwhile (the
// catalog check can lag the lock) takes that as success.
func (a *Arbiter) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, max(a.opTimeout, 5*time.Second))
	defer cancel()
	var exists bool
	if err := a.pool.QueryRow(ctx, `SELECT to_regclass('mesh_authority') IS NOT NULL`).Scan(&exists); err != nil {
		return a.unavailable("open", err)
	}
	if !exists {
		err := pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(schemaLock)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, createTable)
			return err
		})
		var pgErr *pgconn.PgError
		if err != nil && !(errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505")) {
			return a.unavailable("open: create mesh_authority", err)
		}
	}
	if _, err := a.pool.Exec(ctx, `INSERT INTO mesh_authority (cluster) VALUES ($1) ON CONFLICT (cluster) DO NOTHING`, a.cluster); err != nil {
		return a.unavailable("open", err)
	}
	return nil
}

// op bounds one statement by the op timeout.
func (a *Arbiter) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, a.opTimeout)
}

// unavailable turns a driver error into one matching arbiter.ErrUnavailable
// (and the context error, if any) whose text holds no credentials.
func (a *Arbiter) unavailable(op string, err error) error {
	var also []error
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			also = append(also, c)
		}
	}
	return arbiter.Unavailable(op, arbiter.Scrub(err.Error(), a.url), also...)
}

const acquireSQL = `UPDATE mesh_authority
SET holder = $2, epoch = $3 + 1, expires_at = now() + $4 * interval '1 microsecond', updated_at = now()
WHERE cluster = $1 AND epoch <= $3 AND (holder = $2 OR holder = '' OR expires_at <= now())
RETURNING epoch`

const observeSQL = `SELECT holder, epoch,
	CASE WHEN holder = '' THEN 0 ELSE (extract(epoch FROM expires_at - now()) * 1000000)::bigint END
FROM mesh_authority WHERE cluster = $1`

// Acquire implements arbiter.Arbiter.
func (a *Arbiter) Acquire(ctx context.Context, self string, seen uint64) (arbiter.Lease, error) {
	if self == "" {
		return arbiter.Lease{}, errors.New("postgres arbiter: acquire: empty node name")
	}
	if seen >= math.MaxInt64 {
		return arbiter.Lease{}, fmt.Errorf("postgres arbiter: acquire: epoch %d out of range", seen)
	}
	// A refusal is explained by a second read; when that read finds the
	// lease free (it expired or was released in between), try again.
	for attempt := 0; ; attempt++ {
		start := a.now()
		octx, cancel := a.op(ctx)
		var epoch int64
		err := a.pool.QueryRow(octx, acquireSQL, a.cluster, self, int64(seen), a.ttlMicros).Scan(&epoch)
		cancel()
		if err == nil {
			return arbiter.Lease{Holder: self, Epoch: uint64(epoch), Deadline: a.timing.Deadline(start)}, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return arbiter.Lease{}, a.unavailable("acquire", err)
		}
		st, err := a.observe(ctx)
		if errors.Is(err, pgx.ErrNoRows) && attempt < 3 {
			// The row was deleted by hand: put it back (at epoch 0; seen
			// keeps the next epoch above any the caller knows).
			if err := a.ensure(ctx); err != nil {
				return arbiter.Lease{}, err
			}
			continue
		}
		if err != nil {
			return arbiter.Lease{}, a.unavailable("acquire", err)
		}
		if st.Held() && st.Holder != self {
			return arbiter.Lease{}, &arbiter.ConflictError{Reason: arbiter.ErrLeaseHeld, Holder: st.Holder, Epoch: st.Epoch, Seen: seen, Remaining: st.Remaining}
		}
		if st.Epoch > seen {
			return arbiter.Lease{}, &arbiter.ConflictError{Reason: arbiter.ErrStaleEpoch, Holder: st.Holder, Epoch: st.Epoch, Seen: seen, Remaining: max(st.Remaining, 0)}
		}
		if attempt >= 3 { // the lease kept changing under us
			return arbiter.Lease{}, &arbiter.ConflictError{Reason: arbiter.ErrLeaseHeld, Holder: st.Holder, Epoch: st.Epoch, Seen: seen, Remaining: st.Remaining}
		}
	}
}

// Renew implements arbiter.Arbiter.
func (a *Arbiter) Renew(ctx context.Context, l arbiter.Lease) (arbiter.Lease, error) {
	if l.Epoch == 0 || l.Epoch >= math.MaxInt64 {
		return l, arbiter.ErrLeaseLost
	}
	start := a.now()
	octx, cancel := a.op(ctx)
	defer cancel()
	tag, err := a.pool.Exec(octx, `UPDATE mesh_authority
SET expires_at = now() + $4 * interval '1 microsecond', updated_at = now()
WHERE cluster = $1 AND holder = $2 AND epoch = $3`, a.cluster, l.Holder, int64(l.Epoch), a.ttlMicros)
	if err != nil {
		return l, a.unavailable("renew", err)
	}
	if tag.RowsAffected() == 0 {
		return l, arbiter.ErrLeaseLost
	}
	l.Deadline = a.timing.Deadline(start)
	return l, nil
}

// Release implements arbiter.Arbiter.
func (a *Arbiter) Release(ctx context.Context, l arbiter.Lease) error {
	if l.Epoch == 0 || l.Epoch >= math.MaxInt64 {
		return arbiter.ErrLeaseLost
	}
	octx, cancel := a.op(ctx)
	defer cancel()
	tag, err := a.pool.Exec(octx, `UPDATE mesh_authority
SET holder = '', expires_at = now(), updated_at = now()
WHERE cluster = $1 AND holder = $2 AND epoch = $3`, a.cluster, l.Holder, int64(l.Epoch))
	if err != nil {
		return a.unavailable("release", err)
	}
	if tag.RowsAffected() == 0 {
		return arbiter.ErrLeaseLost
	}
	return nil
}

// Observe implements arbiter.Arbiter.
func (a *Arbiter) Observe(ctx context.Context) (arbiter.State, error) {
	st, err := a.observe(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return arbiter.State{}, arbiter.Unavailable("observe", fmt.Sprintf("mesh_authority has no row for cluster %q", a.cluster))
	}
	if err != nil {
		return arbiter.State{}, a.unavailable("observe", err)
	}
	return st, nil
}

// observe reads the row; pgx.ErrNoRows when it is missing.
func (a *Arbiter) observe(ctx context.Context) (arbiter.State, error) {
	octx, cancel := a.op(ctx)
	defer cancel()
	var st arbiter.State
	var epoch, micros int64
	if err := a.pool.QueryRow(octx, observeSQL, a.cluster).Scan(&st.Holder, &epoch, &micros); err != nil {
		return arbiter.State{}, err
	}
	st.Epoch, st.Remaining = uint64(epoch), time.Duration(micros)*time.Microsecond
	return st, nil
}
