package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
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

	mu      sync.Mutex
	written []byte // what the files were given while holding
}

// wrote reports whether the files were given s while holding.
func (f *heldSyncFS) wrote(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Contains(f.written, []byte(s))
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

func (f *heldSyncFile) Write(b []byte) (int, error) {
	if f.fs.holding.Load() {
		f.fs.mu.Lock()
		f.fs.written = append(f.fs.written, b...)
		f.fs.mu.Unlock()
	}
	return f.File.Write(b)
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

// A count-2 route under a key the runtime minted runs without waiting for
// either node's disk: its pending versions are not logged and the replica
// answers the prepare from memory (mintedRoute). Its response still waits
// until the completed record is durable on both nodes. A client-keyed
// route's prepare waits for both disks, since after both nodes restart a
// retry of the key must find the attempt that may have run.
func TestMintedRouteRunsBeforeTheDisksSync(t *testing.T) {
	for _, keyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("client key %v", keyed), func(t *testing.T) {
			c := newAckCluster(t)
			held := &heldRoute{started: make(chan Identity, 4), gate: make(chan struct{}, 1)}
			c.handlers.handlers[plainRoute] = &handler{name: plainRoute, count: 2, kind: continuity.KindRoute, http: held}
			pdisk, sdisk := newHeldSyncFS(), newHeldSyncFS()
			pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
			pcfg.ContinuityStore, scfg.ContinuityStore = StoreLog, StoreLog
			start := func(cfg Config, disk *heldSyncFS) *Node {
				return startNode(t, cfg, WithNetwork(c.fn.Node(cfg.NodeName.String())), withHandlers(c.handlers),
					func(n *Node) { n.storeFS = disk })
			}
			p, s := start(pcfg, pdisk), start(scfg, sdisk)
			release := func() {
				for _, d := range []*heldSyncFS{pdisk, sdisk} {
					d.holding.Store(false)
					select {
					case <-d.release:
					default:
						close(d.release)
					}
				}
			}
			t.Cleanup(release) // before the nodes' cleanups: a store cannot close while an fsync is held
			t.Cleanup(func() {
				select {
				case held.gate <- struct{}{}:
				default:
				}
			})
			waitLinked(t, p, s)
			req := httptest.NewRequestWithContext(context.Background(), "POST", "/transfer", strings.NewReader(`{"amount":5}`))
			if keyed {
				clientKey, _ := clientKeyPlaced(t, plainRoute, "disk", p.Name(), p, s)
				req.Header.Set(HeaderIdempotencyKey, clientKey)
			}
			pdisk.holding.Store(true)
			sdisk.holding.Store(true)
			// The versions each store was given for its log so far: a
			// version is counted when it is stored, before the handler
			// runs (owner) or the prepare is answered (replica).
			pmark, smark := p.store.Mark(), s.store.Mark()
			answered := make(chan *httptest.ResponseRecorder, 1)
			go func() {
				w := httptest.NewRecorder()
				(&routeHandler{name: plainRoute, count: 2, node: p}).ServeHTTP(w, req)
				answered <- w
			}()
			if keyed {
				select {
				case id := <-held.started:
					t.Fatalf("the handler ran (%+v) before the record was durable on both nodes", id)
				case <-time.After(300 * time.Millisecond):
				}
				release()
			}
			var ran Identity
			select {
			case ran = <-held.started:
			case <-time.After(10 * time.Second):
				t.Fatal("the handler never started")
			}
			if clientKeyed(ran.RequestKey) != keyed {
				t.Fatalf("ran under key %s; client-keyed: want %v", ran.RequestKey, keyed)
			}
			if !keyed {
				// Neither log was given a version of the pending record.
				for _, d := range []struct {
					n    *Node
					disk *heldSyncFS
					mark uint64
				}{{p, pdisk, pmark}, {s, sdisk, smark}} {
					if got := d.n.store.Mark(); got != d.mark {
						t.Fatalf("%s gave its log %d versions while the minted record was pending, want none", d.n.Name(), got-d.mark)
					}
					if d.disk.wrote(ran.RequestKey) {
						t.Fatalf("%s logged the minted record while it was pending", d.n.Name())
					}
				}
			}
			held.gate <- struct{}{}
			if !keyed {
				// The completed record is not durable on either node yet:
				// no answer.
				select {
				case w := <-answered:
					t.Fatalf("answered %d %q while both disks' fsyncs were held", w.Code, w.Body)
				case <-time.After(300 * time.Millisecond):
				}
				release()
			}
			select {
			case w := <-answered:
				if w.Code != http.StatusOK || w.Body.String() != fmt.Sprintf("ran %s at epoch %d", ran.AttemptID, ran.Epoch) {
					t.Fatalf("answer %d %q", w.Code, w.Body)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no answer after the disks' fsyncs went through")
			}
			for _, n := range []*Node{p, s} {
				waitRecordOf(t, n, ran.RequestKey, func(r continuity.Record) error {
					if r.Phase != continuity.PhaseCompleted {
						return fmt.Errorf("%s holds %s %s", n.Name(), r.RequestKey, r.Phase)
					}
					return nil
				})
			}
		})
	}
}
