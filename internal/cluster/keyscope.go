package cluster

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	mathrand "math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/exchange"
	"meshgo.dev/mesh/internal/wire"
)

// RouteOption changes how Clustered serves a route. Options are part of the
// route's declaration: every node of a binary must declare a route alike.
// It is opaque: a struct around the function that applies it, so the
// exported API names no unexported type of this package.
type RouteOption struct{ apply func(*routeOptions) }

// routeOptions is the declared behaviour of a route's keys and replays. The
// zero value is the default.
type routeOptions struct {
	// scope lists, in canonical form and sorted, the request headers whose
	// values identify the caller of a client-keyed request; nil means
	// defaultKeyScope, empty (KeyScope()) means none.
	scope []string
	// replay lists, in canonical form, the withheld response headers the
	// route stores and replays anyway.
	replay []string
	// rerun: a retry of a request that ended outcome_unknown runs the
	// handler again (Rerunnable).
	rerun bool
}

// defaultKeyScope lists the request headers that identify the caller of a
// clustered route unless KeyScope says otherwise (sorted).
var defaultKeyScope = []string{"Authorization", "Cookie"}

func newRouteOptions(opts []RouteOption) routeOptions {
	var o routeOptions
	for _, opt := range opts {
		opt.apply(&o)
	}
	return o
}

// scopeHeaders returns the headers that identify a caller of the route.
func (o *routeOptions) scopeHeaders() []string {
	if o.scope == nil {
		return defaultKeyScope
	}
	return o.scope
}

func (o routeOptions) equal(p routeOptions) bool {
	return slices.Equal(o.scopeHeaders(), p.scopeHeaders()) && slices.Equal(o.replay, p.replay) && o.rerun == p.rerun
}

// KeyScope names the request headers that identify the caller of a route
// (by default Authorization and Cookie). A client's Idempotency-Key is scoped
// by route and by the values of these headers: the same key sent with other
// values is another request with its own record, and is never answered from
// the first one's. The values are hashed with a secret derived from the
// cluster cookie before they become part of the request key; they are never
// stored, shown or logged.
//
// KeyScope() with no header makes every caller of the route share one key
// space: use it only for a route whose callers are not told apart at all.
func KeyScope(headers ...string) RouteOption {
	canon := make([]string, 0, len(headers))
	for _, h := range headers {
		if c := http.CanonicalHeaderKey(strings.TrimSpace(h)); c != "" && !slices.Contains(canon, c) {
			canon = append(canon, c)
		}
	}
	slices.Sort(canon) // the order headers are named in does not matter
	return RouteOption{func(o *routeOptions) { o.scope = canon }}
}

// ReplayHeaders lets a route store and replay response headers that are
// withheld from stored responses by default: Set-Cookie and the other
// credential headers (Set-Cookie2, Authorization, Proxy-Authorization,
// Cookie, Authentication-Info, Proxy-Authentication-Info) and the hop-by-hop
// ones (Connection, Keep-Alive, Proxy-Authenticate, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, and any header the response's
// Connection header names). The first response always carries every header
// the handler set; a replay of it carries a withheld header only when named
// here.
func ReplayHeaders(headers ...string) RouteOption {
	canon := make([]string, 0, len(headers))
	for _, h := range headers {
		if c := http.CanonicalHeaderKey(strings.TrimSpace(h)); c != "" && !slices.Contains(canon, c) {
			canon = append(canon, c)
		}
	}
	slices.Sort(canon)
	return RouteOption{func(o *routeOptions) { o.replay = canon }}
}

// ---- request keys --------------------------------------------------------------------------------

// callerMarker introduces the caller tag in the request key of a
// client-keyed route record: http-route::<name>::caller-<tag>::<client key>.
// A minted key is http-route::<name>::<random id>, and a random id never
// contains a colon, so the two forms never meet.
const callerMarker = "caller-"

// callerTagBytes is the length of a caller tag before hex encoding: 128 bits.
const callerTagBytes = 16

// clientKeyed reports whether key is the request key of a route record made
// from a client's Idempotency-Key (as opposed to a minted one): only those
// keep their response for replay.
func clientKeyed(key string) bool {
	rest, ok := strings.CutPrefix(key, continuity.RouteKeyPrefix)
	if !ok {
		return false
	}
	_, rest, ok = strings.Cut(rest, "::")
	return ok && strings.HasPrefix(rest, callerMarker)
}

// clientKey returns the client's Idempotency-Key in h ("" when it sent none),
// or the reason the route refuses it: more than one value, longer than 255
// bytes, anything but visible ASCII (request_key_invalid), or a runtime
// prefix (request_key_reserved).
func clientKey(h http.Header) (string, continuity.Reason) {
	vs := h[HeaderIdempotencyKey]
	switch {
	case len(vs) == 0:
		return "", ""
	case len(vs) > 1:
		return "", continuity.ReasonRequestKeyInvalid
	}
	k := vs[0]
	if len(k) > maxIdempotencyKey {
		return "", continuity.ReasonRequestKeyInvalid
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return "", continuity.ReasonRequestKeyInvalid
		}
	}
	if continuity.ReservedKey(k) {
		return "", continuity.ReasonRequestKeyReserved
	}
	return k, ""
}

// scopeMAC is a pooled keyed hash for caller tags and the scratch buffer
// the caller's credentials are encoded into.
type scopeMAC struct {
	mac hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// initKeyScope derives the secret caller tags are keyed with: from the
// cluster cookie in cluster mode, so both nodes of a pair tag a caller
// alike and a retry is recognised on either; random per process when
// standalone.
func (n *Node) initKeyScope() {
	secret := make([]byte, sha256.Size)
	if n.cfg.mode() == ModeCluster {
		m := hmac.New(sha256.New, []byte(n.cfg.Cookie))
		m.Write([]byte("mesh route key scope v1"))
		secret = m.Sum(secret[:0])
	} else {
		_, _ = rand.Read(secret)
	}
	n.scopeMACs.New = func() any { return &scopeMAC{mac: hmac.New(sha256.New, secret)} }
	for i := range n.anonTags {
		n.anonTags[i] = n.callerTag(make([]string, i), nil)
	}
}

// callerTag returns the hex caller tag of the values of the scope headers
// in h: the first 128 bits of HMAC-SHA256(secret, encoding), where the
// encoding counts each header's values and length-prefixes each value, so
// no two sets of credentials encode alike.
func (n *Node) callerTag(scope []string, h http.Header) [2 * callerTagBytes]byte {
	m := n.scopeMACs.Get().(*scopeMAC)
	buf := m.buf[:0]
	for _, name := range scope {
		vs := h[name]
		buf = binary.AppendUvarint(buf, uint64(len(vs)))
		for _, v := range vs {
			buf = binary.AppendUvarint(buf, uint64(len(v)))
			buf = append(buf, v...)
		}
	}
	m.mac.Reset()
	m.mac.Write(buf)
	sum := m.mac.Sum(m.sum[:0])
	var tag [2 * callerTagBytes]byte
	hex.Encode(tag[:], sum[:callerTagBytes])
	clear(buf) // credentials do not linger in the pool
	if cap(buf) <= 4<<10 {
		m.buf = buf[:0]
		n.scopeMACs.Put(m)
	}
	return tag
}

// scopedRouteKey returns the request key of a request to route name that
// brought the client key ck: http-route::<name>::caller-<tag>::<ck>, where
// tag is a keyed hash of the values of the route's scope headers in h. The
// credentials never leave this function.
func (n *Node) scopedRouteKey(name string, scope []string, h http.Header, ck string) string {
	var tag [2 * callerTagBytes]byte
	anonymous := true
	for _, name := range scope {
		if _, ok := h[name]; ok {
			anonymous = false
			break
		}
	}
	if anonymous && len(scope) < len(n.anonTags) {
		tag = n.anonTags[len(scope)] // the tag of a caller without credentials, computed once
	} else {
		tag = n.callerTag(scope, h)
	}
	var b strings.Builder
	b.Grow(len(continuity.RouteKeyPrefix) + len(name) + 2 + len(callerMarker) + len(tag) + 2 + len(ck))
	b.WriteString(continuity.RouteKeyPrefix)
	b.WriteString(name)
	b.WriteString("::" + callerMarker)
	b.Write(tag[:])
	b.WriteString("::")
	b.WriteString(ck)
	return b.String()
}

// mintAttempts bounds the search for a runtime key this node owns.
const mintAttempts = 64

// mintIDBytes is the length of a minted id before hex encoding: 128 bits.
const mintIDBytes = 16

// mintRouteKey returns a fresh request key for a request that brought none:
// http-route::<name>::<id>, where id is 128 bits from a CSPRNG (see
// mintRandom), so nobody can predict the next one, and a client cannot send
// one anyway (the prefix is reserved). Among random ids it takes the first
// whose placement owner is this node: nobody else can ever send the same
// key, so which node owns it is free to choose, and choosing the node that
// already holds the request saves forwarding it: the request runs where it
// arrived, and a count-2 record is mirrored to the other node.
//
// The placement found on the way comes back with the membership it was
// computed over, so the submission need not hash the key again. The key
// string is the only allocation.
func (n *Node) mintRouteKey(name string) (string, placed) {
	var stack [192]byte
	buf, pl := n.appendMintedRouteKey(stack[:0], name)
	return string(buf), pl
}

// appendMintedRouteKey appends a key mintRouteKey would return to dst.
func (n *Node) appendMintedRouteKey(dst []byte, name string) ([]byte, placed) {
	mp := n.placement.Load()
	members := *mp
	var id [2 * mintIDBytes]byte
	buf := append(append(append(dst, continuity.RouteKeyPrefix...), name...), "::"...)
	base := len(buf)
	// One generator serves every try: with two members half the ids are
	// owned here, so a request draws two on average.
	g := mintSources.Get().(*mathrand.ChaCha8)
	defer mintSources.Put(g)
	for i := 0; ; i++ {
		rnd := mintRandomFrom(g)
		hex.Encode(id[:], rnd[:])
		buf = append(buf[:base], id[:]...)
		if len(members) < 2 || i == mintAttempts {
			return buf, placed{}
		}
		if pl := continuity.PlaceCanonicalBytes(buf[len(dst):], members); pl.Owner == n.self {
			return buf, placed{over: mp, pl: pl}
		}
	}
}

// mintSources holds ChaCha8 generators, each seeded with 256 bits from
// crypto/rand when it is made. ChaCha8 is a cryptographically strong
// generator: its output cannot be predicted from earlier output, so a
// minted id is as unguessable as one read from crypto/rand, without a
// system call (or the operating system's generator) per request. A
// generator is used by one goroutine at a time; one the pool drops is not
// reused, a new one gets a fresh seed.
var mintSources = sync.Pool{New: func() any {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
	return mathrand.NewChaCha8(seed)
}}

// mintRandomFrom returns mintIDBytes random bytes from g, a generator of
// mintSources that the caller holds.
func mintRandomFrom(g *mathrand.ChaCha8) (out [mintIDBytes]byte) {
	binary.LittleEndian.PutUint64(out[:8], g.Uint64())
	binary.LittleEndian.PutUint64(out[8:], g.Uint64())
	return out
}

// placed is the placement of a request key over the canonical membership
// over points to (n.placement), or none when over is nil.
type placed struct {
	over *[]string
	pl   continuity.Placement
}

// routeKey returns the request key of r to the route of h and the request's
// payload hash (exchange.PayloadHash of r, pathValues and body), whether the
// key came from the client (and keeps its response for replay), or the
// reason the client's key is refused.
//
// A minted key comes with its placement (see mintRouteKey), and shares one
// allocation with the hash: both live as long as the record does.
func (n *Node) routeKey(h *handler, r *http.Request, pathValues []wire.HeaderField, body []byte) (key, hash string, pl placed, client bool, reason continuity.Reason) {
	ck, reason := clientKey(r.Header)
	switch {
	case reason != "":
		return "", "", placed{}, false, reason
	case ck == "":
		var stack [256]byte
		buf, pl := n.appendMintedRouteKey(stack[:0], h.name)
		k := len(buf)
		both := string(exchange.AppendPayloadHash(buf, r, pathValues, body))
		return both[:k], both[k:], pl, false, ""
	}
	return n.scopedRouteKey(h.name, h.route.scopeHeaders(), r.Header, ck), exchange.PayloadHash(r, pathValues, body), placed{}, true, ""
}

// routeOptionsError describes a route declared twice with other options.
func routeOptionsError(name string) error {
	return fmt.Errorf("%s is already declared as a clustered route with other options; declare each route once", name)
}
