// Package etcd is the arbiter.Arbiter whose store is an etcd cluster, reached
// through the official client (go.etcd.io/etcd/client/v3). Each cluster name
// has two keys under KeyPrefix:
//
//	mesh/authority/<cluster>/epoch    "<epoch> <holder>", or "<epoch>" once released
//	mesh/authority/<cluster>/holder   "<epoch> <holder>", attached to an etcd lease
//
// The epoch key has no etcd lease: it is the fencing token and outlives every
// tenure. The holder key lives only as long as the etcd lease it is attached
// to, so the store's expiry is etcd's: the leader's lessor revokes the lease
// TTL after it was granted or last kept alive, and the revocation deletes the
// holder key. The lease is held while the holder key exists.
//
// Every change is one transaction whose comparisons decide between two
// nodes that race; with $me the caller, $seen the epoch it has seen and $e its
// lease's epoch:
//
//	Acquire: read both keys; refuse when the holder key names another node,
//	         or the epoch is above $seen; else grant an etcd lease and
//	         IF   mod_revision(epoch) and mod_revision(holder) are as read
//	         THEN epoch = holder = "$seen+1 $me", holder on the new lease
//	Renew:   IF value(epoch) = "$e $me" THEN read holder; KeepAliveOnce on
//	         its etcd lease. When the holder key is gone (the lease expired
//	         and nobody took it) grant a new etcd lease and
//	         IF value(epoch) = "$e $me" AND holder does not exist
//	         THEN holder = "$e $me" on the new lease
//	Release: IF value(epoch) = "$e $me" THEN epoch = "$e", delete holder,
//	         then revoke the holder's etcd lease
//
// Why the epoch never decreases: only Acquire raises it, to $seen+1 after
// reading an epoch at most $seen, and its transaction commits only if the
// epoch key was not written since that read (its mod revision is unchanged),
// so each write is one above an epoch no greater than $seen; Release rewrites
// the same epoch; no etcd lease is attached to the key, so it never expires.
// The epoch is not etcd's revision: revisions rise on every write to the
// cluster (an epoch must rise by one per tenure) and a snapshot restore can
// bring back an older one. A node passes the highest epoch it knows as $seen,
// so even an epoch key deleted or restored by hand cannot lead to an epoch at
// or below one already used.
//
// Why one holder at a time: while the holder key names a node, Acquire by
// another is refused, and its transaction fails if the key changed since it
// was read. The key disappears only by Release or by the revocation of its
// etcd lease, which the leader performs after the lease's TTL has run from its
// last grant or keep-alive (a new leader first extends every lease), so never
// before the holder's local Deadline (see package arbiter for the margin).
// The value of the epoch key names the holder too, so that a Renew after an
// expiry nobody used can tell "expired at my epoch" (renewable) from
// "released" or "taken" (lost).
//
// Time: etcd leases have whole-second TTLs, so Timing.TTL must be a whole
// number of seconds, and the server must grant it as asked: a server grants
// no lease shorter than 1.5 × its election timeout (2 s with etcd's default
// 1 s), and Open refuses a TTL below that. etcd's lessor checks for expired
// leases every 500 ms, so a lease can outlive its TTL by that much (failover
// is that much slower; safety is not affected). Observe reports the time
// left as etcd does, in whole seconds rounded down, plus one second: an upper
// bound on the store's expiry, never below it.
//
// etcd versions: the server must speak the v3 API (3.4 or newer; the tests
// run Debian's etcd 3.4). In multi-member clusters use a release with the fix
// for etcd issue 15247 (a leader stalled in disk writes could revoke leases
// early after losing leadership); a single member is not affected.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"meshgo.dev/mesh/internal/arbiter"
)

// KeyPrefix is the prefix of every key the arbiter writes.
const KeyPrefix = "mesh/authority/"

// Config is what Open needs. URL is
// etcd://[user:password@]host:port[,host:port...] (user and password,
// percent-encoded, when the cluster has authentication on); Cluster names
// the keys; Timing.TTL must be a whole number of seconds.
type Config = arbiter.Config

// Arbiter is a client of one cluster's keys. It is safe for concurrent use;
// Close closes its connections (not the lease).
type Arbiter struct {
	// client is the connection in use. With credentials it is replaced by
	// a new one, logged in afresh, when a request goes unanswered (relogin).
	client atomic.Pointer[clientv3.Client]
	ccfg   clientv3.Config // what client was made from
	login  bool            // ccfg has a user: the client holds a token

	mu        sync.Mutex // guards closed and relogging
	closed    bool       // Close was called: a new client is closed at once
	relogging bool       // a relogin is under way
	relogins  atomic.Int64

	shown     string   // the URL as errors show it: etcd://host:port,...
	secrets   []string // removed from every error: the URL, its user info and password
	epochKey  string
	holderKey string
	timing    arbiter.Timing
	ttlSec    int64
	opTimeout time.Duration
	now       func() time.Time
}

var _ arbiter.Arbiter = (*Arbiter)(nil)

// Open connects to etcd and checks that it answers and grants a lease of
// the configured TTL (a probe lease, revoked at once). It fails with an error
// matching arbiter.ErrUnavailable when etcd cannot be reached within the op
// timeout (with credentials: within the TTL, or ctx's deadline if sooner,
// since logging in makes the server hash the password) or refuses the
// credentials, and with a plain error for a bad Config
// or a TTL the server would lengthen.
func Open(ctx context.Context, cfg Config) (*Arbiter, error) {
	cfg, err := cfg.WithDefaults(arbiter.KindEtcd)
	if err != nil {
		return nil, err
	}
	if cfg.Timing.TTL%time.Second != 0 {
		return nil, fmt.Errorf("etcd arbiter: lease TTL %v is not a whole number of seconds, as etcd leases are", cfg.Timing.TTL)
	}
	ep, err := parseURL(string(cfg.URL))
	if err != nil {
		return nil, fmt.Errorf("etcd arbiter: %v", err)
	}
	a := &Arbiter{
		shown:     cfg.URL.String(),
		secrets:   ep.secrets(string(cfg.URL)),
		epochKey:  KeyPrefix + cfg.Cluster + "/epoch",
		holderKey: KeyPrefix + cfg.Cluster + "/holder",
		timing:    cfg.Timing,
		ttlSec:    int64(cfg.Timing.TTL / time.Second),
		opTimeout: cfg.OpTimeout,
		now:       cfg.Now,
	}
	// With a user, New authenticates at once, bounded by DialTimeout;
	// without one it only prepares the connection. Authenticating makes
	// the server check the password against its bcrypt hash, which a busy
	// server may take longer than one op timeout to do: at boot, where no
	// lease is at stake yet, it gets up to a TTL (and the caller's ctx).
	dial := cfg.OpTimeout
	if ep.user != "" {
		dial = max(dial, cfg.Timing.TTL)
		if d, ok := ctx.Deadline(); ok {
			dial = max(min(dial, time.Until(d)), time.Millisecond)
		}
	}
	a.ccfg = clientv3.Config{
		Endpoints:   ep.endpoints,
		Username:    ep.user,
		Password:    ep.password,
		DialTimeout: dial,
		// A connection that stops answering mid-call is found by the
		// call's deadline; keep-alive pings find one idle in between
		// (etcd refuses pings more often than every 5 s).
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: max(cfg.OpTimeout, time.Second),
		Logger:               zap.NewNop(),
		// After etcd comes back, reconnect within a renewal interval or so
		// (gRPC's default backoff grows to two minutes).
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   max(cfg.Timing.Renew, 100*time.Millisecond),
			},
			MinConnectTimeout: cfg.OpTimeout,
		})},
	}
	a.login = ep.user != ""
	c, err := clientv3.New(a.ccfg)
	if err != nil {
		return nil, a.unavailable("open", err)
	}
	a.client.Store(c)
	if err := a.probe(ctx); err != nil {
		a.Close() // and a relogin the probe may have started
		return nil, err
	}
	return a, nil
}

// probe reads the keys and grants and revokes a lease: etcd answers, lets
// these credentials read (a lease needs no permission), and keeps the TTL
// as asked.
func (a *Arbiter) probe(ctx context.Context) error {
	if _, err := a.read(ctx); err != nil {
		return a.unavailable("open", err)
	}
	octx, cancel := a.op(ctx)
	defer cancel()
	g, err := a.client.Load().Grant(octx, a.ttlSec)
	if err != nil {
		return a.unavailable("open", err)
	}
	a.revoke(ctx, g.ID)
	if g.TTL != a.ttlSec {
		return fmt.Errorf("etcd arbiter: the server grants leases of %d s when asked for %d s: its shortest lease is 1.5 × its election timeout; raise the lease TTL to %d s or lower the server's --election-timeout",
			g.TTL, a.ttlSec, g.TTL)
	}
	return nil
}

// Close closes the connections. The lease is left to expire, or to be
// released by Release before Close.
func (a *Arbiter) Close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.client.Load().Close()
}

// relogin replaces the client with a new one, which logs in again, in the
// background; one at a time. A server restarted with authentication on
// forgets the tokens it issued, and etcd 3.4 answers a request that
// carries one of them with nothing at all (etcd issue 11377) rather than
// "invalid auth token", which the client would act on by itself: without
// a new login the holder could never renew again. A request in flight on
// the old client when it is closed fails, and is retried by its caller
// like any unavailability.
func (a *Arbiter) relogin() {
	a.mu.Lock()
	if a.closed || a.relogging {
		a.mu.Unlock()
		return
	}
	a.relogging = true
	a.mu.Unlock()
	go func() {
		c, err := clientv3.New(a.ccfg)
		a.mu.Lock()
		defer a.mu.Unlock()
		a.relogging = false
		if err != nil {
			return // the next unanswered request tries again
		}
		if a.closed {
			c.Close()
			return
		}
		a.relogins.Add(1)
		a.client.Swap(c).Close()
	}()
}

// op bounds one request by the op timeout, and makes a member without a
// leader fail at once instead of waiting for one.
func (a *Arbiter) op(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, a.opTimeout)
	return clientv3.WithRequireLeader(ctx), cancel
}

// unavailable turns a client error into one matching arbiter.ErrUnavailable
// (and the context error, if any) whose text holds no credentials.
func (a *Arbiter) unavailable(op string, err error) error {
	var also []error
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, c) {
			also = append(also, c)
		}
	}
	if a.login && errors.Is(err, context.DeadlineExceeded) && a.client.Load() != nil {
		a.relogin()
	}
	msg := err.Error()
	switch {
	case errors.Is(err, rpctypes.ErrUserEmpty):
		msg += " (the server has authentication on: give etcd://user:password@host:port)"
	case errors.Is(err, context.DeadlineExceeded):
		msg = "no answer in time (" + msg + ")"
	}
	for _, s := range a.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	return arbiter.Unavailable(op, a.shown+": "+msg, also...)
}

// revoke revokes an etcd lease that no key needs any more. It is a courtesy
// (the lease would expire anyway), so its error is dropped.
func (a *Arbiter) revoke(ctx context.Context, id clientv3.LeaseID) {
	if ctx.Err() != nil {
		return
	}
	octx, cancel := a.op(ctx)
	defer cancel()
	a.client.Load().Revoke(octx, id)
}

// record is the value of the epoch or holder key.
type record struct {
	epoch  uint64
	holder string // "" in a released epoch key
}

func (r record) String() string {
	if r.holder == "" {
		return strconv.FormatUint(r.epoch, 10)
	}
	return strconv.FormatUint(r.epoch, 10) + " " + r.holder
}

func parseRecord(v []byte) (record, error) {
	e, holder, _ := strings.Cut(string(v), " ")
	n, err := strconv.ParseUint(e, 10, 64)
	if err != nil {
		return record{}, fmt.Errorf("malformed value %q", v)
	}
	return record{epoch: n, holder: holder}, nil
}

// snapshot is both keys as read at one revision.
type snapshot struct {
	epoch     record // zero when the key is missing
	epochRev  int64  // mod revision; 0 when missing
	holder    record // zero when the key is missing
	holderRev int64
	lease     clientv3.LeaseID // the holder key's etcd lease
}

func (s snapshot) held() bool { return s.holderRev != 0 }

// getOps reads both keys in one transaction.
func (a *Arbiter) getOps() []clientv3.Op {
	return []clientv3.Op{clientv3.OpGet(a.epochKey), clientv3.OpGet(a.holderKey)}
}

// parseSnapshot reads the answers of getOps, found at resps[i:i+2].
func (a *Arbiter) parseSnapshot(resps []*etcdserverpb.ResponseOp, i int) (snapshot, error) {
	var s snapshot
	if len(resps) < i+2 {
		return s, errors.New("short transaction response")
	}
	if kvs := resps[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
		r, err := parseRecord(kvs[0].Value)
		if err != nil {
			return s, fmt.Errorf("key %s: %v", a.epochKey, err)
		}
		s.epoch, s.epochRev = r, kvs[0].ModRevision
	}
	if kvs := resps[i+1].GetResponseRange().GetKvs(); len(kvs) > 0 {
		r, err := parseRecord(kvs[0].Value)
		if err != nil {
			return s, fmt.Errorf("key %s: %v", a.holderKey, err)
		}
		s.holder, s.holderRev, s.lease = r, kvs[0].ModRevision, clientv3.LeaseID(kvs[0].Lease)
	}
	return s, nil
}

func (a *Arbiter) read(ctx context.Context) (snapshot, error) {
	octx, cancel := a.op(ctx)
	defer cancel()
	r, err := a.client.Load().Txn(octx).Then(a.getOps()...).Commit()
	if err != nil {
		return snapshot{}, err
	}
	return a.parseSnapshot(r.Responses, 0)
}

// remaining asks etcd how long the lease id has left: an upper bound, as the
// package doc explains; 0 when it is gone.
func (a *Arbiter) remaining(ctx context.Context, id clientv3.LeaseID) (time.Duration, error) {
	octx, cancel := a.op(ctx)
	defer cancel()
	r, err := a.client.Load().TimeToLive(octx, id)
	if err != nil {
		if errors.Is(err, rpctypes.ErrLeaseNotFound) {
			return 0, nil
		}
		return 0, err
	}
	if r.TTL < 0 {
		return 0, nil
	}
	return time.Duration(r.TTL+1) * time.Second, nil
}

// grant grants an etcd lease of the TTL.
func (a *Arbiter) grant(ctx context.Context) (clientv3.LeaseID, error) {
	octx, cancel := a.op(ctx)
	defer cancel()
	g, err := a.client.Load().Grant(octx, a.ttlSec)
	if err != nil {
		return 0, err
	}
	if g.TTL < a.ttlSec { // never seen: etcd only lengthens a TTL
		a.revoke(ctx, g.ID)
		return 0, fmt.Errorf("granted a %d s lease when asked for %d s", g.TTL, a.ttlSec)
	}
	return g.ID, nil
}

// Acquire implements arbiter.Arbiter.
func (a *Arbiter) Acquire(ctx context.Context, self string, seen uint64) (arbiter.Lease, error) {
	if self == "" {
		return arbiter.Lease{}, errors.New("etcd arbiter: acquire: empty node name")
	}
	if seen == math.MaxUint64 {
		return arbiter.Lease{}, fmt.Errorf("etcd arbiter: acquire: epoch %d out of range", seen)
	}
	s, err := a.read(ctx)
	if err != nil {
		return arbiter.Lease{}, a.unavailable("acquire", err)
	}
	// A transaction that lost a race reads the keys again in its Else
	// branch; after a few, the lease keeps changing under us.
	for attempt := 0; ; attempt++ {
		if err := a.refusal(ctx, s, self, seen); err != nil {
			return arbiter.Lease{}, err
		}
		if attempt == 4 {
			return arbiter.Lease{}, &arbiter.ConflictError{Reason: arbiter.ErrLeaseHeld, Holder: s.holder.holder, Epoch: s.epoch.epoch, Seen: seen}
		}
		// The lease's expiry is set when etcd grants it, after start.
		start := a.now()
		id, err := a.grant(ctx)
		if err != nil {
			return arbiter.Lease{}, a.unavailable("acquire", err)
		}
		won := record{epoch: seen + 1, holder: self}
		octx, cancel := a.op(ctx)
		r, err := a.client.Load().Txn(octx).
			If(clientv3.Compare(clientv3.ModRevision(a.epochKey), "=", s.epochRev),
				clientv3.Compare(clientv3.ModRevision(a.holderKey), "=", s.holderRev)).
			Then(clientv3.OpPut(a.epochKey, won.String()),
				clientv3.OpPut(a.holderKey, won.String(), clientv3.WithLease(id))).
			Else(a.getOps()...).
			Commit()
		cancel()
		if err != nil {
			// The transaction may have been applied: keep the lease, which
			// expires by itself if it was not.
			return arbiter.Lease{}, a.unavailable("acquire", err)
		}
		if r.Succeeded {
			if s.held() && s.lease != id {
				a.revoke(ctx, s.lease) // our own earlier tenure's lease
			}
			return arbiter.Lease{Holder: self, Epoch: won.epoch, Deadline: a.timing.Deadline(start)}, nil
		}
		a.revoke(ctx, id)
		if s, err = a.parseSnapshot(r.Responses, 0); err != nil {
			return arbiter.Lease{}, a.unavailable("acquire", err)
		}
	}
}

// refusal returns why self may not acquire at seen+1 given s, or nil.
func (a *Arbiter) refusal(ctx context.Context, s snapshot, self string, seen uint64) error {
	var left time.Duration
	if s.held() {
		var err error
		if left, err = a.remaining(ctx, s.lease); err != nil {
			return a.unavailable("acquire", err)
		}
	}
	if s.held() && s.holder.holder != self {
		return &arbiter.ConflictError{Reason: arbiter.ErrLeaseHeld, Holder: s.holder.holder, Epoch: s.epoch.epoch, Seen: seen, Remaining: left}
	}
	if s.epoch.epoch > seen {
		return &arbiter.ConflictError{Reason: arbiter.ErrStaleEpoch, Holder: s.holder.holder, Epoch: s.epoch.epoch, Seen: seen, Remaining: left}
	}
	return nil
}

// Renew implements arbiter.Arbiter.
func (a *Arbiter) Renew(ctx context.Context, l arbiter.Lease) (arbiter.Lease, error) {
	if l.Epoch == 0 || l.Holder == "" {
		return l, arbiter.ErrLeaseLost
	}
	mine := record{epoch: l.Epoch, holder: l.Holder}.String()
	isMine := clientv3.Compare(clientv3.Value(a.epochKey), "=", mine)
	// The etcd lease is kept alive, or granted, after start.
	start := a.now()
	for attempt := 0; attempt < 3; attempt++ {
		octx, cancel := a.op(ctx)
		r, err := a.client.Load().Txn(octx).If(isMine).Then(clientv3.OpGet(a.holderKey)).Commit()
		cancel()
		if err != nil {
			return l, a.unavailable("renew", err)
		}
		if !r.Succeeded {
			return l, arbiter.ErrLeaseLost
		}
		if kvs := r.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 {
			if string(kvs[0].Value) != mine { // the keys were edited by hand
				return l, arbiter.ErrLeaseLost
			}
			octx, cancel := a.op(ctx)
			_, err := a.client.Load().KeepAliveOnce(octx, clientv3.LeaseID(kvs[0].Lease))
			cancel()
			if err == nil {
				l.Deadline = a.timing.Deadline(start)
				return l, nil
			}
			if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return l, a.unavailable("renew", err)
			}
			// It expired just now: revoking deletes the key; look again.
			continue
		}
		// The lease expired and nobody took it: the epoch is still ours.
		id, err := a.grant(ctx)
		if err != nil {
			return l, a.unavailable("renew", err)
		}
		octx, cancel = a.op(ctx)
		r, err = a.client.Load().Txn(octx).
			If(isMine, clientv3.Compare(clientv3.CreateRevision(a.holderKey), "=", 0)).
			Then(clientv3.OpPut(a.holderKey, mine, clientv3.WithLease(id))).
			Commit()
		cancel()
		if err != nil {
			return l, a.unavailable("renew", err)
		}
		if r.Succeeded {
			l.Deadline = a.timing.Deadline(start)
			return l, nil
		}
		a.revoke(ctx, id) // lost, or another Renew of ours put the key back: look again
	}
	return l, arbiter.Unavailable("renew", "the lease kept changing while it was renewed")
}

// Release implements arbiter.Arbiter.
func (a *Arbiter) Release(ctx context.Context, l arbiter.Lease) error {
	if l.Epoch == 0 || l.Holder == "" {
		return arbiter.ErrLeaseLost
	}
	mine := record{epoch: l.Epoch, holder: l.Holder}.String()
	octx, cancel := a.op(ctx)
	r, err := a.client.Load().Txn(octx).
		If(clientv3.Compare(clientv3.Value(a.epochKey), "=", mine)).
		Then(clientv3.OpPut(a.epochKey, record{epoch: l.Epoch}.String()),
			clientv3.OpDelete(a.holderKey, clientv3.WithPrevKV())).
		Commit()
	cancel()
	if err != nil {
		return a.unavailable("release", err)
	}
	if !r.Succeeded {
		return arbiter.ErrLeaseLost
	}
	if len(r.Responses) > 1 {
		if prev := r.Responses[1].GetResponseDeleteRange().GetPrevKvs(); len(prev) > 0 && prev[0].Lease != 0 {
			a.revoke(ctx, clientv3.LeaseID(prev[0].Lease))
		}
	}
	return nil
}

// Observe implements arbiter.Arbiter. Holder is the holder key's node while
// it exists; after an expiry nobody has used, the last holder with no time
// left (it may still renew); "" once released.
func (a *Arbiter) Observe(ctx context.Context) (arbiter.State, error) {
	s, err := a.read(ctx)
	if err != nil {
		return arbiter.State{}, a.unavailable("observe", err)
	}
	st := arbiter.State{Holder: s.epoch.holder, Epoch: s.epoch.epoch}
	if s.held() {
		st.Holder = s.holder.holder
		if st.Remaining, err = a.remaining(ctx, s.lease); err != nil {
			return arbiter.State{}, a.unavailable("observe", err)
		}
	}
	return st, nil
}

// endpoints is a parsed etcd:// URL.
type endpoints struct {
	endpoints      []string
	user, password string
	rawUserinfo    string
}

// secrets lists what must never appear in an error: the URL and, when it
// has credentials, its user info and password, raw and decoded.
func (e endpoints) secrets(raw string) []string {
	out := []string{raw}
	if e.rawUserinfo != "" {
		out = append(out, e.rawUserinfo+"@", e.rawUserinfo)
	}
	if e.password != "" {
		out = append(out, e.password, url.QueryEscape(e.password), url.PathEscape(e.password))
	}
	return out
}

// parseURL parses etcd://[user:password@]host:port[,host:port...] as
// arbiter.ParseSpec does; errors never quote the user info.
func parseURL(raw string) (endpoints, error) {
	if !strings.HasPrefix(raw, "etcd://") {
		return endpoints{}, fmt.Errorf("URL %s: want etcd://[user:password@]host:port[,host:port]", arbiter.Redacted(raw))
	}
	spec, err := arbiter.ParseSpec(raw)
	if err != nil {
		return endpoints{}, fmt.Errorf("URL %s: %s", arbiter.Redacted(raw), strings.TrimPrefix(err.Error(), "Invalid "+arbiter.EnvVar+": "))
	}
	e := endpoints{endpoints: spec.Endpoints}
	if e.user, e.password, err = arbiter.EtcdCredentials(raw); err != nil {
		return endpoints{}, fmt.Errorf("URL %s: %v", arbiter.Redacted(raw), err)
	}
	if i := strings.LastIndexByte(raw, '@'); i >= 0 {
		e.rawUserinfo = strings.TrimPrefix(raw[:i], "etcd://")
	}
	return e, nil
}
