// Package cluster is the Mesh engine: a node's lifecycle (Start, Shutdown,
// the process's default node), configuration and its validation (the MESH_*
// environment contract, node names), the declared-work and route registry,
// the authenticated peer sessions (the link itself is internal/peer, which
// hands this package what it reads) and their admission, discovery,
// replication of continuity records to the peer, execution of declared work
// and clustered routes (placement, forwarding, idempotent replay, key
// scoping), failover and fencing, startup work, liveness and readiness, and
// the operator server that meshc talks to.
//
// Package mesh (the module root) is its public face: it aliases the types
// users name (mesh.Config is cluster.Config, mesh.Node is cluster.Node) and
// forwards its functions here, so every exported identifier of this package
// that package mesh aliases is public API; adding an exported method to Node
// adds it to mesh.Node.
//
// Import rule: cluster may import the standard library and mesh's other
// internal packages (authority, continuity, cookie, exchange, handshake,
// mapsize, operator, peer, wire). It never imports package mesh; its tests may
// use the test kit meshtest (the fault network, free ports), which does not
// import the engine. No other internal package imports cluster.
package cluster
