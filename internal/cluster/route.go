package cluster

import (
	"fmt"
	"net/http"

	"meshgo.dev/mesh/internal/continuity"
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
	name, err := runtimeName(h)
	if err != nil {
		panic(fmt.Sprintf("mesh.Clustered: %v", err))
	}
	if n < 1 {
		panic(fmt.Sprintf("mesh.Clustered(%s): replication count must be at least 1, got %d", name, n))
	}
	hd := &handler{name: name, count: n, kind: continuity.KindRoute, http: http.HandlerFunc(h), route: newRouteOptions(opts)}
	if err := defaultRegistry.add(hd); err != nil {
		panic(fmt.Sprintf("mesh.Clustered: %v", err))
	}
	return &routeHandler{name: name, count: n}
}

// ClusteredDefault is Clustered with the default replication count, 2.
func ClusteredDefault(h func(http.ResponseWriter, *http.Request), opts ...RouteOption) http.Handler {
	return Clustered(DefaultReplicationCount, h, opts...)
}
