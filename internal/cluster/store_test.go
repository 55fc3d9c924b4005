package cluster

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/recordlog"
)

func TestContinuityStoreFromEnv(t *testing.T) {
	for _, v := range []string{"", "log", "memory", " log "} {
		cfg, err := ConfigFromEnv(envOf(cluster(map[string]string{envContinuityStore: v})), nil)
		if err != nil {
			t.Fatalf("%s=%q: %v", envContinuityStore, v, err)
		}
		if want := strings.TrimSpace(v); cfg.ContinuityStore != want {
			t.Fatalf("%s=%q gave ContinuityStore %q", envContinuityStore, v, cfg.ContinuityStore)
		}
	}
	_, err := ConfigFromEnv(envOf(cluster(map[string]string{envContinuityStore: "disk"})), nil)
	if want := `Invalid MESH_CONTINUITY_STORE: expected log or memory, got "disk"`; err == nil || err.Error() != want {
		t.Fatalf("bad store: %v, want %q", err, want)
	}
	_, err = ConfigFromEnv(envOf(map[string]string{envContinuityStore: "log"}), nil)
	if want := "Invalid MESH_CONTINUITY_STORE: " + reasonStoreNeedsStateDir; err == nil || err.Error() != want {
		t.Fatalf("standalone log without a state dir: %v, want %q", err, want)
	}
	if _, err := ConfigFromEnv(envOf(map[string]string{envContinuityStore: "log", envStateDir: t.TempDir()}), nil); err != nil {
		t.Fatalf("standalone log with a state dir: %v", err)
	}
	// Validate says the same of a Config built in code.
	if err := (Config{ContinuityStore: "disk"}).Validate(); err == nil || !strings.Contains(err.Error(), `got "disk"`) {
		t.Fatalf("Validate of a bad store: %v", err)
	}
	if err := (Config{ContinuityStore: StoreLog}).Validate(); err == nil || !strings.Contains(err.Error(), reasonStoreNeedsStateDir) {
		t.Fatalf("Validate of a standalone log without a state dir: %v", err)
	}
	if k := (Config{}).storeKind(); k != StoreMemory {
		t.Fatalf("a standalone node's default store is %s", k)
	}
	if k := testConfig(t, "a", "127.0.0.1", 1, RolePrimary).storeKind(); k != DefaultContinuityStore {
		t.Fatalf("a cluster node's default store is %s, want %s", k, DefaultContinuityStore)
	}
}

// TestLogStoreKeepsRecordsAcrossRestart: a node with the log store finds its
// records after a restart, numbers new attempts above them, and reports
// store_recovered.
func TestLogStoreKeepsRecordsAcrossRestart(t *testing.T) {
	port := freePort(t)
	cfg := testConfig(t, "primary", "127.0.0.1", port, RolePrimary)
	cfg.ContinuityStore = StoreLog
	key := continuity.StartupKeyPrefix + "cluster.Add"
	n, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if rec, ok := n.Record(key); !ok || rec.Phase != continuity.PhaseCompleted {
			return fmt.Errorf("startup record %+v", rec)
		}
		return nil
	})
	before, _ := n.Record(key)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg.StateDir, "records")); err != nil {
		t.Fatalf("no record log under the state dir: %v", err)
	}

	n2 := startNode(t, cfg)
	after, ok := n2.Record(key)
	if !ok || after.Attempt != before.Attempt || after.Phase != continuity.PhaseCompleted || after.ExecutionNode != before.ExecutionNode {
		t.Fatalf("after restart the record is %+v (found %v), was %+v", after, ok, before)
	}
	var found *continuity.Entry
	for _, e := range n2.Diagnostics().Entries {
		if e.Transition == transitionStoreRecovered {
			found = &e
		}
	}
	if found == nil {
		t.Fatal("no store_recovered diagnostics entry")
	}
	meta := map[string]string{}
	for _, kv := range found.Metadata {
		meta[kv.Key] = kv.Value
	}
	if meta["retained"] == "0" || meta["retained"] == "" || meta["truncated_bytes"] != "0" || meta["entries"] == "0" {
		t.Fatalf("store_recovered metadata %v", meta)
	}
}

// TestLogStoreOpenFailureStopsStart: a record directory that cannot be used
// is an error at boot, naming it.
func TestLogStoreOpenFailureStopsStart(t *testing.T) {
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.ContinuityStore = StoreLog
	if err := os.WriteFile(filepath.Join(cfg.StateDir, "records"), []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(cfg)
	if err == nil || !strings.Contains(err.Error(), "record store") || !strings.Contains(err.Error(), filepath.Join(cfg.StateDir, "records")) {
		t.Fatalf("Start with an unusable record directory: %v", err)
	}
	var pathErr *os.PathError
	if !errors.As(err, &pathErr) && !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("error does not carry the file system's reason: %v", err)
	}
}

// fullDiskFS is the operating system's file system with a switch that makes
// every write to a file fail with ENOSPC, as a full disk does.
type fullDiskFS struct {
	recordlog.OSFS
	full atomic.Bool
}

func (f *fullDiskFS) OpenFile(name string, flag int, perm fs.FileMode) (recordlog.File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{File: file, fs: f}, nil
}

type fullDiskFile struct {
	recordlog.File
	fs *fullDiskFS
}

func (f *fullDiskFile) Write(p []byte) (int, error) {
	if f.fs.full.Load() {
		return 0, &os.PathError{Op: "write", Path: "segment", Err: syscall.ENOSPC}
	}
	return f.File.Write(p)
}

// TestLogStoreDiskFullRefusesWithReason: while the record store's disk is
// full a submission is refused with record_store_unavailable (the client is
// never told it was accepted) and the node logs why; once the disk has room
// the next one is created.
func TestLogStoreDiskFullRefusesWithReason(t *testing.T) {
	handlers := &registry{handlers: map[string]*handler{
		"durable.One": {name: "durable.One", count: 1, kind: continuity.KindWork, run: func(context.Context) error { return nil }},
	}}
	disk := &fullDiskFS{}
	cfg := testConfig(t, "primary", "127.0.0.1", freePort(t), RolePrimary)
	cfg.ContinuityStore = StoreLog
	n := startNode(t, cfg, withHandlers(handlers), func(n *Node) { n.storeFS = disk })
	decl := Declaration{RuntimeName: "durable.One", ReplicationCount: 1}

	disk.full.Store(true)
	res, err := n.Submit(context.Background(), decl, "full-1", "payload")
	if err != nil || res.Outcome != OutcomeRejected || res.Record.Error != string(continuity.ReasonStoreUnavailable) {
		t.Fatalf("submit on a full disk: %+v, %v; want rejected with %s", res, err, continuity.ReasonStoreUnavailable)
	}
	disk.full.Store(false)
	res, err = n.Submit(context.Background(), decl, "full-2", "payload")
	if err != nil || res.Outcome != OutcomeCreated {
		t.Fatalf("submit once the disk has room: %+v, %v", res, err)
	}
}
