package cluster

import (
	"context"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/recordlog"
)

// heldSyncFS is the operating system's file system with a switch that
// holds every fsync of a file until release: a disk that is slow to make
// anything durable.
type heldSyncFS struct {
	recordlog.OSFS
	holding atomic.Bool
	entered chan struct{} // one signal when an fsync is first held
	once    sync.Once
	release chan struct{} // closed to let held fsyncs through
}

func newHeldSyncFS() *heldSyncFS {
	return &heldSyncFS{entered: make(chan struct{}), release: make(chan struct{})}
}

func (f *heldSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (recordlog.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &heldSyncFile{File: file, fs: f}, nil
}

type heldSyncFile struct {
	recordlog.File
	fs *heldSyncFS
}

func (f *heldSyncFile) Sync() error {
	if f.fs.holding.Load() {
		f.fs.once.Do(func() { close(f.fs.entered) })
		<-f.fs.release
	}
	return f.File.Sync()
}

// TestReplicaAcknowledgesOnlyOnceDurable: the durability point of the
// product build is "durable on both nodes" (ackpoint_disk.go). With the
// replica's fsyncs held, a count-2 submission on its owner is not
// acknowledged, although the owner's own copy is durable: the replica's
// prepare ack waits for its disk. Once the disk lets the fsync through, the
// submission is created. (In a build with mesh_ackfrommemory, made for the
// benchmark only, this test fails: the replica acknowledges from memory.)
func TestReplicaAcknowledgesOnlyOnceDurable(t *testing.T) {
	c := newAckCluster(t)
	disk := newHeldSyncFS()
	pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	pcfg.ContinuityStore, scfg.ContinuityStore = StoreLog, StoreLog
	p := c.start(pcfg)
	s := startNode(t, scfg, WithNetwork(c.fn.Node(scfg.NodeName.String())), withHandlers(c.handlers),
		func(n *Node) { n.storeFS = disk })
	// Registered after the nodes' own cleanups, so it runs before them: a
	// node cannot close its store while an fsync is held.
	t.Cleanup(func() {
		disk.holding.Store(false)
		select {
		case <-disk.release:
		default:
			close(disk.release)
		}
	})
	waitLinked(t, p, s)
	key := keyPlaced(t, "durable-on-both", p.Name(), p, s)

	disk.holding.Store(true)
	type result struct {
		res SubmitResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "x")
		done <- result{res, err}
	}()
	<-disk.entered // the replica stored the mirrored record and its fsync is held
	// The owner's copy becomes durable on its own disk; the submission
	// still waits, for as long as the replica's fsync is held.
	eventually(t, 10*time.Second, func() error { return p.syncRecords() })
	select {
	case r := <-done:
		t.Fatalf("submission acknowledged (%+v, %v) while the replica's fsync was held", r.res, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	close(disk.release)
	select {
	case r := <-done:
		if r.err != nil || r.res.Outcome != OutcomeCreated {
			t.Fatalf("submission after the replica's fsync: %+v, %v; want created", r.res, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("submission not acknowledged after the replica's fsync went through")
	}
	c.work.release()
}
