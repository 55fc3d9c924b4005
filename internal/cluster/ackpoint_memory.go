//go:build mesh_ackfrommemory

package cluster

// replicaAckAfterFsync: see ackpoint_disk.go. In this build, for the
// benchmark only, a replica acknowledges a prepare or a Held call as soon as
// the version is in its memory (its log writes it in the background), and a
// forwarded outcome is answered without the ingress's fsync: the owner's
// fsync alone makes a step durable.
const replicaAckAfterFsync = false
