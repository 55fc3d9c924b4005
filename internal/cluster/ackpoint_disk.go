//go:build !mesh_ackfrommemory

package cluster

// replicaAckAfterFsync says where a count-2 step becomes durable with the
// log store: true, the product's choice, is "durable on both nodes": a
// replica acknowledges a prepare or a Held call only once the version is
// fsynced on its disk, and an ingress that is the replica fsyncs a forwarded
// outcome before answering its client (ARCHITECTURE.md, "Durability point").
//
// A build with the mesh_ackfrommemory tag (ackpoint_memory.go) makes it
// false, "durable on one node plus the peer's memory", so that the
// benchmark can measure both (make bench, step durable). Nothing else
// should set the tag.
const replicaAckAfterFsync = true
