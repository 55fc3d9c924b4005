package mesh

import (
	"net/http"

	"meshgo.dev/mesh/internal/cluster"
)

// Clustered wraps h as a clustered route with replication count n. Every
// request gets a continuity record keyed http-route::<runtime name>::<id>,
// where id is random, or, when the client sends an Idempotency-Key,
// http-route::<runtime name>::caller-<tag>::<key>, where tag is a keyed hash
// of the caller's credential headers (see KeyScope): a retry by the same
// caller is answered from the first response (without its Set-Cookie and
// other withheld headers, see ReplayHeaders), another caller's request with
// the same key is a request of its own. The request runs on the placement
// owner — forwarded over the cluster link when the owner is the peer — and
// the response carries X-Mesh-Continuity-Request-Key. Runtime refusals are
// 503 {"error":"<reason>"}; an Idempotency-Key that is invalid or carries a
// runtime prefix (http-route::, startup::, request::) is refused with 400,
// a body over MESH_ROUTE_MAX_BODY_BYTES with 413.
//
// h must be a named top-level function or a method value of an exported type,
// so that every node of the binary finds it by its runtime name; anything else
// panics at registration, as does a second registration of the same name with
// a different count or other options.
func Clustered(n int, h func(http.ResponseWriter, *http.Request), opts ...RouteOption) http.Handler {
	return cluster.Clustered(n, h, opts...)
}

// ClusteredDefault is Clustered with the default replication count, 2.
func ClusteredDefault(h func(http.ResponseWriter, *http.Request), opts ...RouteOption) http.Handler {
	return cluster.ClusteredDefault(h, opts...)
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
func KeyScope(headers ...string) RouteOption { return cluster.KeyScope(headers...) }

// ReplayHeaders lets a route store and replay response headers that are
// withheld from stored responses by default: Set-Cookie and the other
// credential headers (Set-Cookie2, Authorization, Proxy-Authorization,
// Cookie, Authentication-Info, Proxy-Authentication-Info) and the hop-by-hop
// ones (Connection, Keep-Alive, Proxy-Authenticate, Proxy-Connection, TE,
// Trailer, Transfer-Encoding, Upgrade, and any header the response's
// Connection header names). The first response always carries every header
// the handler set; a replay of it carries a withheld header only when named
// here.
func ReplayHeaders(headers ...string) RouteOption { return cluster.ReplayHeaders(headers...) }

// Headers of the clustered-route contract.
const (
	// HeaderRequestKey carries the continuity request key on every response
	// of a clustered route: an operator and debugging seam.
	HeaderRequestKey = cluster.HeaderRequestKey
	// HeaderIdempotencyKey, sent by a client, becomes the request key: a
	// retried request is answered from the first execution's stored outcome.
	HeaderIdempotencyKey = cluster.HeaderIdempotencyKey
)

// Rerunnable declares a route whose handler is safe to run again for a
// request that may already have run: it fences its side effects with the
// promotion epoch of IdentityFrom(ctx), or is idempotent by nature. When the
// node running a request dies before anyone heard its outcome, the record
// ends outcome_unknown (503 {"error":"outcome_unknown"}: the handler may have
// run); with Rerunnable, a retry of the same Idempotency-Key on the primary
// runs the handler again under a new attempt and answers with its response.
// Without it, a route's handler never runs twice for one key.
func Rerunnable() RouteOption { return cluster.Rerunnable() }
