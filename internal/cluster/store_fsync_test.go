package cluster

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/recordlog"
)

// failingSyncFS is the operating system's file system with a switch that
// makes every fsync of a file fail with EIO, as a failing disk does.
type failingSyncFS struct {
	recordlog.OSFS
	fail  atomic.Bool
	syncs atomic.Int64 // fsyncs that failed
}

func (f *failingSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (recordlog.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &failingSyncFile{File: file, fs: f}, nil
}

type failingSyncFile struct {
	recordlog.File
	fs *failingSyncFS
}

func (f *failingSyncFile) Sync() error {
	if f.fs.fail.Load() {
		f.fs.syncs.Add(1)
		return &os.PathError{Op: "fsync", Path: "segment", Err: syscall.EIO}
	}
	return f.File.Sync()
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogStoreFsyncFailureInPair: on one node of a pair with the log store,
// fsync starts failing. Its count-2 route requests and submissions are
// refused with record_store_unavailable (never a 200 or created for a record
// that is not durable), the error is logged with its cause and without the
// cookie or the caller's credentials, and, as the record log documents (a
// failed fsync leaves the log failed until it is reopened), the node keeps
// refusing after the disk recovers until it is restarted. Restarted, it
// holds what was acknowledged before the failure and accepts again. A
// count-2 request the healthy peer takes while it fails is not answered 200
// either: the failing node is its replica and cannot make the record durable.
func TestLogStoreFsyncFailureInPair(t *testing.T) {
	c := newAckCluster(t)
	disk := &failingSyncFS{}
	logs := &lockedBuffer{}
	pcfg, scfg := c.config("primary", "127.0.0.1", RolePrimary), c.config("standby", "::1", RoleStandby)
	pcfg.ContinuityStore, scfg.ContinuityStore = StoreLog, StoreLog
	pcfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	p := startNode(t, pcfg, WithNetwork(c.fn.Node(pcfg.NodeName.String())), withHandlers(c.handlers),
		func(n *Node) { n.storeFS = disk })
	s := c.start(scfg)
	waitLinked(t, p, s)

	const token = "Bearer fsync-3e9d1c7a5b"
	serve := func(n *Node, clientKey string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/orders", strings.NewReader("{}"))
		req.Header.Set(HeaderIdempotencyKey, clientKey)
		req.Header.Set("Authorization", token)
		(&routeHandler{name: mirroredRoute, count: 2, node: n}).ServeHTTP(w, req)
		return w
	}
	refused := func(what string, w *httptest.ResponseRecorder) {
		t.Helper()
		if want := string(jsonError(string(continuity.ReasonStoreUnavailable))); w.Code != http.StatusServiceUnavailable || w.Body.String() != want {
			t.Fatalf("%s: %d %s, want 503 %s", what, w.Code, w.Body.String(), want)
		}
	}

	if w := serve(p, "before-failure"); w.Code != http.StatusOK {
		t.Fatalf("route before the failure: %d %s", w.Code, w.Body.String())
	}
	before, err := p.Submit(context.Background(), ackDecl(gatedMirrored), keyPlaced(t, "work-before", s.Name(), p, s), "x")
	if err != nil || before.Outcome != OutcomeCreated {
		t.Fatalf("submit before the failure: %+v %v", before, err)
	}

	disk.fail.Store(true)
	refused("route on the failing node", serve(p, "during-failure"))
	// The first refusal failed the log (the fsync of the record's
	// submission); from then on the store takes no record at all, and a
	// submission is refused before anything is stored, with the reason.
	for _, key := range []string{"work-during-1", "work-during-2"} {
		res, err := p.Submit(context.Background(), ackDecl(gatedMirrored), key, "x")
		if RefusalReason(err) != string(continuity.ReasonStoreUnavailable) || res.Outcome == OutcomeCreated {
			t.Fatalf("submit %s on the failing node: %+v, %v; want refused with %s", key, res, err, continuity.ReasonStoreUnavailable)
		}
		if _, ok := p.Record(key); ok {
			t.Fatalf("submit %s on the failing node left a record", key)
		}
	}
	if disk.syncs.Load() == 0 {
		t.Fatal("no fsync failed: the test injected nothing")
	}
	// The healthy peer cannot have the failing node hold a count-2 record
	// durably: whatever it answers, it is not a 200.
	if w := serve(s, "peer-during-failure"); w.Code == http.StatusOK {
		t.Fatalf("the peer answered 200 for a count-2 route whose replica cannot fsync: %s", w.Body.String())
	}

	log := logs.String()
	if !strings.Contains(log, "record store cannot make records durable") || !strings.Contains(log, "input/output error") {
		t.Fatalf("the fsync failure is not logged with its cause:\n%s", log)
	}
	for _, secret := range []string{string(pcfg.Cookie), "fsync-3e9d1c7a5b"} {
		if strings.Contains(log, secret) {
			t.Fatalf("the log carries a secret (%q):\n%s", secret, log)
		}
	}

	// The disk recovers; the log stays failed until it is reopened.
	disk.fail.Store(false)
	refused("route after the disk recovered, before a restart", serve(p, "after-recovery"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.Shutdown(ctx) // the failed store's close reports the failure
	p2 := startNode(t, pcfg, WithNetwork(c.fn.Node(pcfg.NodeName.String())), withHandlers(c.handlers),
		func(n *Node) { n.storeFS = disk })
	waitLinked(t, p2, s)
	if rec, ok := p2.Record(before.Record.RequestKey); !ok || rec.Attempt < before.Record.Attempt {
		t.Fatalf("work acknowledged before the failure, after the restart: %+v (found %v)", rec, ok)
	}
	if w := serve(p2, "before-failure"); w.Code != http.StatusOK || w.Body.String() != "ok" {
		t.Fatalf("retry of the route acknowledged before the failure: %d %q", w.Code, w.Body.String())
	}
	if w := serve(p2, "after-restart"); w.Code != http.StatusOK {
		t.Fatalf("route after the restart: %d %s", w.Code, w.Body.String())
	}
	c.work.release()
}
