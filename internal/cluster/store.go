package cluster

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/logstore"
	"meshgo.dev/mesh/internal/recordlog"
)

// transitionStoreRecovered is the coalesced diagnostics entry that says what
// the durable record store read from its log when the node started.
const transitionStoreRecovered = "store_recovered"

// recordsDirName is the record log's directory under the state directory.
const recordsDirName = recordlog.DirName

// openStore opens the record store the configuration names: nil (the
// registry's own MemoryStore) for StoreMemory; for StoreLog the log under
// <state dir>/records, replayed into memory. dir is the node's state
// directory ("" on a standalone node, which then uses cfg.StateDir).
func (n *Node) openStore(cfg Config, dir string) (*logstore.Store, logstore.Recovered, error) {
	if cfg.storeKind() != StoreLog {
		return nil, logstore.Recovered{}, nil
	}
	if dir == "" {
		dir = cfg.StateDir
	}
	path := filepath.Join(dir, recordsDirName)
	s, rec, err := logstore.Open(path, logstore.Options{
		Retention: continuity.Retention{Records: cfg.RetainedRecords, Bytes: cfg.RetainedBytes},
		Log:       recordlog.Options{FS: n.storeFS},
		Volatile:  logVolatile,
	})
	if err != nil {
		return nil, rec, fmt.Errorf("record store %s: %w", path, err)
	}
	return s, rec, nil
}

// reportRecovered records what the log store read at start, as the
// store_recovered diagnostics entry and a log line.
func (n *Node) reportRecovered(rec logstore.Recovered) {
	meta := []continuity.KV{
		{Key: "pending", Value: strconv.Itoa(rec.Pending)},
		{Key: "retained", Value: strconv.Itoa(rec.Retained)},
		{Key: "segments", Value: strconv.Itoa(rec.Segments)},
		{Key: "entries", Value: strconv.FormatInt(rec.Entries, 10)},
		{Key: "bytes", Value: strconv.FormatInt(rec.Bytes, 10)},
		{Key: "truncated_bytes", Value: strconv.FormatInt(rec.TruncatedBytes, 10)},
		{Key: "removed_files", Value: strconv.Itoa(rec.RemovedFiles)},
	}
	attrs := []any{"node", n.self, "pending", rec.Pending, "retained", rec.Retained, "segments", rec.Segments,
		"entries", rec.Entries, "bytes", rec.Bytes, "truncated_bytes", rec.TruncatedBytes, "removed_files", rec.RemovedFiles}
	reason := ""
	if rec.TruncatedBytes > 0 {
		meta = append(meta,
			continuity.KV{Key: "truncated_file", Value: rec.TruncatedFile},
			continuity.KV{Key: "truncated_at", Value: strconv.FormatInt(rec.TruncatedAt, 10)})
		attrs = append(attrs, "truncated_file", rec.TruncatedFile, "truncated_at", rec.TruncatedAt, "truncate_reason", rec.TruncateReason)
		reason = rec.TruncateReason
	}
	role, epoch := n.reg.Authority()
	n.reg.Diagnostics().Coalesce(continuity.Entry{Transition: transitionStoreRecovered, Reason: reason,
		ClusterRole: role, PromotionEpoch: epoch, Metadata: meta, Time: time.Now().UTC()})
	if rec.TruncatedBytes > 0 {
		n.log.Warn("[mesh-rt continuity] record store recovered: torn tail cut", attrs...)
		return
	}
	n.log.Info("[mesh-rt continuity] record store recovered", attrs...)
}

// syncRecords returns once every record change made so far is durable in
// the record store (at once with the memory store), or a refusal with
// ReasonStoreUnavailable, logged with the store's error, when it cannot be.
// The engine calls it before an acknowledgement becomes visible: a replica's
// prepare ack, a created submission, a route's response.
func (n *Node) syncRecords() error {
	if n.store == nil {
		return nil
	}
	return n.storeSynced(n.store.Sync())
}

// storeMark returns a mark for syncRecordsTo: the record changes made so far.
func (n *Node) storeMark() uint64 {
	if n.store == nil {
		return 0
	}
	return n.store.Mark()
}

// syncRecordsTo is syncRecords for the record changes made before mark was
// taken (storeMark): a caller that stored its record and then waited for the
// replica does not also wait for the changes other requests made meanwhile.
func (n *Node) syncRecordsTo(mark uint64) error {
	return n.syncRecordsToFor(mark, 1)
}

// syncRecordsToFor is syncRecordsTo on behalf of acks acknowledgements
// that share the wait (the store's counters count each).
func (n *Node) syncRecordsToFor(mark uint64, acks int) error {
	if n.store == nil {
		return nil
	}
	return n.storeSynced(n.store.SyncToFor(mark, acks))
}

// storeFailure is err, from a registry call that stores a record, unless it
// says the log store took nothing because it failed (a failed fsync leaves
// it refusing until the node restarts) or is closed: then it is the
// refusal storeSynced makes, the store's error only in the log. A client
// hears record_store_unavailable, never the store's error text.
func (n *Node) storeFailure(err error) error {
	if n.store != nil && (errors.Is(err, recordlog.ErrFailed) || errors.Is(err, recordlog.ErrClosed)) {
		return n.storeSynced(err)
	}
	return err
}

func (n *Node) storeSynced(err error) error {
	if err != nil {
		n.log.Error("[mesh-rt continuity] record store cannot make records durable", "node", n.self, "error", err.Error())
		return &continuity.Error{Reason: continuity.ReasonStoreUnavailable}
	}
	return nil
}

// closeStore closes the log store, if the node has one, once nothing calls
// the registry any more.
func (n *Node) closeStore() {
	if n.store == nil {
		return
	}
	st := n.store.Stats()
	if err := n.store.Close(); err != nil {
		n.log.Error("[mesh-rt continuity] record store close failed", "node", n.self, "error", err.Error())
	}
	var fsyncMicros int64
	if st.Log.Syncs > 0 {
		fsyncMicros = st.Log.SyncTime.Microseconds() / st.Log.Syncs
	}
	perWait := func(d time.Duration) int64 {
		if st.Waited == 0 {
			return 0
		}
		return d.Microseconds() / int64(st.Waited)
	}
	n.log.Info("[mesh-rt continuity] record store closed", "node", n.self, "puts", st.Puts, "fsyncs", st.Log.Syncs,
		"fsync_mean_us", fsyncMicros, "fdatasyncs", st.Log.Datasyncs, "writes_unawaited", st.Unawaited, "syncs", st.Syncs, "syncs_waited", st.Waited,
		"sync_wait_mean_us", perWait(st.WaitTime), "sync_wait_queued_us", perWait(st.WaitQueued),
		"sync_wait_commit_us", perWait(st.WaitCommit), "sync_wait_wake_us", perWait(st.WaitWake))
}

// resumeRecovered takes up the pending records of this node's previous run
// that the log store gave back: no process runs them now. When a peer
// outlived that run (its first snapshot names an earlier incarnation of this
// node) the peer recovers them, and this node does nothing; otherwise (both
// nodes restarted, or the peer never knew the earlier run) nobody else will. It first waits until the pair has settled (the first snapshot of a
// peer is merged, or the startup work delay and a peer timeout pass with
// none), so that a peer that already recovered a record while this node was
// down wins with its newer attempt and the old one is skipped. Then, for a
// record still at the same attempt and pending:
//   - owned here: it is rolled over and run under a new attempt (route
//     records are closed outcome_unknown instead, as on any loss of their
//     owner: their client saw no answer, and the handler may have run);
//   - work owned by the peer whose ingress this node was: it is dispatched
//     to its owner again, since the previous run may have died before doing
//     so; an owner already running the attempt does not run it twice, and
//     an owner whose previous run held it resumes it under a new attempt
//     (heldBefore, handleDispatch).
func (n *Node) resumeRecovered(recs []continuity.Record) {
	if len(recs) == 0 {
		return
	}
	n.goRun(func() {
		deadline := time.NewTimer(n.cfg.StartupWorkDelay + n.cfg.PeerTimeout)
		defer deadline.Stop()
		tick := time.NewTicker(n.liveInterval())
		defer tick.Stop()
	wait:
		for {
			for _, s := range n.sessionList() {
				if s.isSynced() {
					break wait
				}
			}
			select {
			case <-n.ctx.Done():
				return
			case <-deadline.C:
				break wait
			case <-tick.C:
			}
		}
		defer func() {
			n.resumeMu.Lock()
			n.heldBefore = nil // taken up below, or left to the peer
			n.resumeMu.Unlock()
		}()
		if n.peerOutlivedPrevious.Load() {
			// The peer outlived the previous run and recovers its records
			// itself (heardIncarnation); taking them up here as well would
			// run the same work under two attempts.
			n.log.Info("[mesh-rt continuity] peer outlived the previous run; leaving its recovery to the peer",
				"node", n.self, "records", len(recs))
			return
		}
		for _, old := range recs {
			n.resumeMu.Lock()
			cur, ok := n.reg.Get(old.RequestKey)
			current := ok && cur.Pending() && cur.Attempt == old.Attempt && !n.inflight.has(cur.RequestKey)
			delete(n.heldBefore, old.RequestKey)
			if current && cur.OwnerNode == n.self {
				n.recoverRecord(cur, n.self)
			}
			n.resumeMu.Unlock()
			if !current || cur.OwnerNode == n.self || cur.IngressNode != n.self || cur.Kind != continuity.KindWork {
				continue
			}
			h, ok := n.handlers.get(cur.RuntimeName)
			if !ok || h.kind != continuity.KindWork {
				continue
			}
			if err := n.dispatchWork(n.ctx, h, cur); err != nil {
				n.log.Warn("[mesh-rt continuity] dispatch of recovered work failed", "node", n.self,
					"request_key", cur.RequestKey, "attempt_id", cur.AttemptID(), "owner_node", cur.OwnerNode, "error", err.Error())
			}
		}
	})
}

// syncPrepared makes a count-2 record this node submitted durable here
// before it is acknowledged or runs, once its replica holds it durably (the
// prepare ack). mark was taken right after the record was stored, before the
// prepare: the write of that version began then and overlapped the round
// trip. For a route record that version is what must be on disk before the
// handler runs (its client has no answer yet; a pending route record whose
// owner is lost is closed, never re-run), and the later transitions, the
// replica's ack included, are durable with the completed record before the
// response leaves (executeRoute, and the ingress's sync of a forwarded
// outcome), so it waits only for mark. Work is acknowledged by this return
// (Submit answers created), so it waits for the record as the ack left it.
func (n *Node) syncPrepared(rec *continuity.Record, mark uint64) error {
	switch {
	case mintedRoute(rec):
		return nil // its pending versions are not logged (logVolatile)
	case rec.Kind == continuity.KindRoute:
		return n.syncRecordsTo(mark)
	}
	return n.syncRecords()
}

// mintedRoute says whether rec is a route record under a key the runtime
// minted (the client sent no Idempotency-Key). Such a record's pending
// versions need no disk, on the ingress or on the replica.
//
// Work's prepared version is an acknowledgement (Submit answers created). A
// client-keyed route record's protects a retry: after both nodes restarted,
// a retry of the client's key finds the attempt that may have run and is
// answered outcome_unknown instead of running the handler again. A minted
// key has no retry: no client can send it (the prefix is reserved), and the
// client that sent the request has had no answer to act on. A full-pair
// crash while such a request runs loses its pending record, as it loses the
// client's connection; its completed version, the client's answer, is
// durable (on both nodes for count 2) before the response leaves, as for
// every route (executeRoute, the replica's Held answer).
func mintedRoute(rec *continuity.Record) bool {
	return rec.Kind == continuity.KindRoute && strings.HasPrefix(rec.RequestKey, continuity.RouteKeyPrefix) &&
		!clientKeyed(rec.RequestKey)
}

// logVolatile is the log store's Options.Volatile: the versions it keeps in
// memory only. A pending version of a minted route record is never
// acknowledged by itself (mintedRoute), so writing it would only cost the
// log a write and an fsync's worth of bytes per request; the log holds such
// a record from its terminal version on.
func logVolatile(rec *continuity.Record) bool {
	return rec.Pending() && mintedRoute(rec)
}
