package mesh

import (
	"fmt"
	"net/http"

	"meshgo.dev/mesh/internal/continuity"
)

// Clustered wraps h as a clustered route with replication count n. Every
// request gets a continuity record keyed http-route::<runtime name>::<id> (or
// the client's Idempotency-Key), runs on the placement owner — forwarded over
// the cluster link when the owner is the peer — and the response carries
// X-Mesh-Continuity-Request-Key. Runtime refusals are 503 {"error":"<reason>"}.
//
// h must be a named top-level function or a method value of an exported type,
// so that every node of the binary finds it by its runtime name; anything else
// panics at registration, as does a second registration of the same name with
// a different count.
func Clustered(n int, h func(http.ResponseWriter, *http.Request)) http.Handler {
	name, err := runtimeName(h)
	if err != nil {
		panic(fmt.Sprintf("mesh.Clustered: %v", err))
	}
	if n < 1 {
		panic(fmt.Sprintf("mesh.Clustered(%s): replication count must be at least 1, got %d", name, n))
	}
	hd := &handler{name: name, count: n, kind: continuity.KindRoute, http: http.HandlerFunc(h)}
	if err := defaultRegistry.add(hd); err != nil {
		panic(fmt.Sprintf("mesh.Clustered: %v", err))
	}
	return &routeHandler{name: name, count: n}
}

// ClusteredDefault is Clustered with the default replication count, 2.
func ClusteredDefault(h func(http.ResponseWriter, *http.Request)) http.Handler {
	return Clustered(DefaultReplicationCount, h)
}
