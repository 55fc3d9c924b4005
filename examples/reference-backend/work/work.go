// Package work declares the backend's clustered work with the Mesh runtime:
// RunJob, which runs one job per request key (the job id).
package work

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"meshgo.dev/mesh"

	"reference-backend/jobs"
)

// Job is the declaration of RunJob (runtime name work.RunJob, replication
// count 2): submitting it under a job id mirrors the record to the peer
// before the job runs, so the peer re-runs the job under a new attempt (and
// a higher epoch, when it promotes) if the owner dies.
var Job = mesh.Work(RunJob)

// LocalJob is the declaration a standalone node submits jobs with (runtime
// name work.RunJobLocal, replication count 1): with no peer there is no
// mirror, and a count-2 submission would be refused with
// replica_required_unavailable. A cluster node always uses Job, so a job is
// never accepted without its mirror.
var LocalJob = mesh.Work(RunJobLocal, mesh.ReplicationCount(1))

// runner is the Runner RunJob uses; Use sets it at start-up.
var runner atomic.Pointer[jobs.Runner]

// Use makes RunJob run jobs through r. Call it before the runtime starts, so
// no attempt finds it unset.
func Use(r *jobs.Runner) { runner.Store(r) }

// RunJobLocal runs a job exactly as RunJob does; it exists so a standalone
// node can declare the same work with replication count 1.
func RunJobLocal(ctx context.Context) (string, error) { return RunJob(ctx) }

// startupPrefix is the request key prefix of the runtime's startup run.
const startupPrefix = "startup::"

// errNotStarted: an attempt arrived before Use was called.
var errNotStarted = errors.New("job runner is not set up")

// RunJob runs the job whose id is the request key of its continuity identity.
// Its input (kind and payload) is read from the jobs table and every write is
// fenced with the identity's promotion epoch.
//
// The runtime also runs declared work once per cluster at boot under the key
// startup::<runtime name>; that run has no job and does nothing.
func RunJob(ctx context.Context) (string, error) {
	id, ok := mesh.IdentityFrom(ctx)
	if !ok {
		return "", errors.New("no continuity identity in the context")
	}
	if strings.HasPrefix(id.RequestKey, startupPrefix) {
		return "startup: nothing to do", nil
	}
	r := runner.Load()
	if r == nil {
		return "", errNotStarted
	}
	node := mesh.Default().Name() // the node running this attempt
	return r.Run(ctx, jobs.Attempt{JobID: id.RequestKey, AttemptID: id.AttemptID, Epoch: id.Epoch, Node: node})
}
