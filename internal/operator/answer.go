package operator

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// Source is the node state an operator query reads. Every method returns a
// copy the caller may keep; none of them blocks on the network. Methods may be
// called concurrently with each other and with the node's own work.
type Source interface {
	// Status returns the node's identity, connected peers and authority.
	Status() StatusView
	// Records returns every retained continuity record, in any order.
	Records() []continuity.Record
	// Record returns the record for key, or false when the node holds none.
	Record(key string) (continuity.Record, bool)
	// Diagnostics returns a snapshot of the diagnostics ring.
	Diagnostics() continuity.Snapshot
}

// StatusView is the raw material of a Status reply. PeerNodes may be unsorted
// and may contain duplicates or the local node; Answer normalizes it. Peers
// may be in any order; Answer sorts them by node name.
type StatusView struct {
	LocalNode string
	PeerNodes []string
	Role      continuity.Role
	Epoch     uint64
	Health    continuity.Health
	Peers     []PeerView
	Ready     bool
	// NotReadyReason names why the node is not ready; empty when Ready.
	NotReadyReason string
	// SafetyMode is the kind of arbiter that decides promotions: peer,
	// postgres or etcd.
	SafetyMode string
	// Lease is the arbiter's lease as the node knows it; nil with the peer
	// rule, or when no node holds it (or the store cannot be reached).
	Lease *LeaseView
	// PromotionRefusal is the reason of the last promotion the arbiter
	// refused this node (lease_held_by:<node>, arbiter_unavailable, ...);
	// empty when none.
	PromotionRefusal string
}

// LeaseView is a held lease: its holder, its epoch (the fencing token) and
// the time left before it expires.
type LeaseView struct {
	Holder    string
	Epoch     uint64
	ExpiresIn time.Duration
}

// PeerView is what a node knows of one peer: the state of the link, the
// cluster protocol version the link settled on (zero with no link) and,
// when Heard, the authority the peer last reported and how long ago.
type PeerView struct {
	Node         string
	Link         LinkState
	Protocol     uint8
	Heard        bool
	Role         continuity.Role
	Epoch        uint64
	HeartbeatAge time.Duration
}

// replyOverhead is the encoded size of an OK reply with an empty body: what a
// body has to leave free in a frame.
var replyOverhead = len(wire.Encode(wire.OperatorReply{OK: true}))

// maxBody is the largest reply body that still fits one frame; a larger one
// goes out in parts (wire.OperatorReplyPart) of this size.
var maxBody = wire.MaxFrame - replyOverhead

// MaxReplyBody bounds an OK reply's body, whatever the number of frames it
// takes: 256 MiB, some 400,000 continuity records. A node refuses to build a
// larger one (the reply names --limit instead) and meshc stops reading one,
// so neither side holds an unbounded document in memory.
const MaxReplyBody = 256 << 20

// Answer builds the reply to q from src: an OK reply whose body is the JSON
// document for the query kind (with an empty target, which meshc fills in), or
// an error reply naming the reason: request_key_missing,
// request_key_not_found, "invalid operator query kind <n>", or a body larger
// than MaxReplyBody. Answer never panics on any query.
func Answer(q wire.OperatorQuery, src Source) wire.OperatorReply {
	return answer(q, src, MaxReplyBody)
}

func answer(q wire.OperatorQuery, src Source, limit int) wire.OperatorReply {
	var doc any
	switch Kind(q.Kind) {
	case KindStatus:
		doc = newStatus(src.Status())
	case KindContinuityLookup:
		if q.RequestKey == "" {
			return errorReply(string(continuity.ReasonRequestKeyMissing))
		}
		r, ok := src.Record(q.RequestKey)
		if !ok {
			return errorReply(string(continuity.ReasonRequestKeyNotFound))
		}
		doc = newContinuityRecord(r)
	case KindContinuityList:
		doc = newContinuityList(src.Records(), q.HasLimit, q.Limit)
	case KindDiagnostics:
		doc = newDiagnostics(src.Diagnostics(), q.HasLimit, q.Limit)
	case KindSwitchover:
		sw, ok := src.(Switcher)
		if !ok {
			return errorReply("switchover_rejected:unsupported")
		}
		v, err := sw.Switchover(q.RequestKey)
		if err != nil {
			return errorReply(err.Error())
		}
		doc = newSwitchover(v)
	default:
		return errorReply(fmt.Sprintf("invalid operator query kind %d", q.Kind))
	}
	body, err := marshalCompact(doc)
	if err != nil {
		return errorReply(fmt.Sprintf("encode %s reply: %v", Kind(q.Kind), err))
	}
	if len(body) > limit {
		return errorReply(fmt.Sprintf("operator reply too large: %d bytes (max %d); query with a limit", len(body), limit))
	}
	return wire.OperatorReply{OK: true, Body: body}
}

func errorReply(reason string) wire.OperatorReply {
	return wire.OperatorReply{Error: reason}
}

// marshalCompact encodes v without indentation or HTML escaping; the client
// re-indents what it prints.
func marshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func newStatus(v StatusView) Status {
	peers := make([]string, 0, len(v.PeerNodes))
	for _, p := range v.PeerNodes {
		if p != "" && p != v.LocalNode {
			peers = append(peers, p)
		}
	}
	slices.Sort(peers)
	peers = slices.Compact(peers)
	nodes := append([]string{v.LocalNode}, peers...)
	slices.Sort(nodes)
	views := make([]Peer, 0, len(v.Peers))
	for _, p := range v.Peers {
		if p.Node == "" || p.Node == v.LocalNode {
			continue
		}
		pv := Peer{LinkState: p.Link, Node: p.Node}
		if p.Protocol != 0 {
			v := p.Protocol
			pv.ProtocolVersion = &v
		}
		if p.Heard {
			role, epoch, age := p.Role, p.Epoch, max(p.HeartbeatAge, 0).Milliseconds()
			pv.ClusterRole, pv.PromotionEpoch, pv.HeartbeatAgeMS = &role, &epoch, &age
		}
		views = append(views, pv)
	}
	slices.SortFunc(views, func(a, b Peer) int { return cmp.Compare(a.Node, b.Node) })
	views = slices.CompactFunc(views, func(a, b Peer) bool { return a.Node == b.Node })
	readiness := &Readiness{Ready: v.Ready}
	if !v.Ready {
		reason := cmp.Or(v.NotReadyReason, "reason_unspecified")
		readiness.Reason = &reason
	}
	return Status{
		Authority: Authority{
			ClusterRole:       v.Role,
			PromotionEpoch:    v.Epoch,
			ReplicationHealth: v.Health,
			SafetyMode:        v.SafetyMode,
			Lease:             newLease(v.Lease),
			LastPromotionRefusal: func() *string {
				if v.PromotionRefusal == "" {
					return nil
				}
				r := v.PromotionRefusal
				return &r
			}(),
		},
		Membership: Membership{LocalNode: v.LocalNode, Nodes: nodes, PeerNodes: peers},
		Peers:      views,
		Readiness:  readiness,
	}
}

// newContinuityList sorts records by request key, then attempt id (as
// strings), and keeps the first limit of them when hasLimit is set.
func newContinuityList(records []continuity.Record, hasLimit bool, limit uint32) ContinuityList {
	sorted := make([]Record, 0, len(records))
	for _, r := range records {
		sorted = append(sorted, newRecord(r))
	}
	slices.SortFunc(sorted, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.RequestKey, b.RequestKey), cmp.Compare(a.AttemptID, b.AttemptID))
	})
	total := len(sorted)
	truncated := false
	if hasLimit && uint64(limit) < uint64(total) {
		sorted = sorted[:limit]
		truncated = true
	}
	return ContinuityList{Records: sorted, TotalRecords: total, Truncated: truncated}
}

// newDiagnostics keeps the limit most recent entries when hasLimit is set.
// The reply is truncated when the ring has dropped entries or the limit cut
// some.
func newDiagnostics(s continuity.Snapshot, hasLimit bool, limit uint32) Diagnostics {
	kept := s.Entries
	total := len(kept)
	cut := false
	if hasLimit && uint64(limit) < uint64(total) {
		kept = kept[total-int(limit):]
		cut = true
	}
	entries := make([]DiagnosticEntry, 0, len(kept))
	for _, e := range kept {
		entries = append(entries, newEntry(e))
	}
	return Diagnostics{
		BufferCapacity: s.Capacity,
		DroppedEntries: s.Dropped,
		Entries:        entries,
		TotalEntries:   total,
		Truncated:      s.Dropped > 0 || cut,
	}
}

// Serve answers the single query an authenticated operator connection
// carries: it reads one frame, answers it from src and writes the reply, in
// one frame when it fits and otherwise as parts that end with the reply
// frame. timeout bounds the read and, separately, the write, so the time
// spent building a large answer does not eat into the time to send it; no
// deadlines are set when timeout ≤ 0. A frame that is not a well-formed query
// gets an error reply. Serve does not close conn; the caller closes it when
// Serve returns.
func Serve(conn net.Conn, src Source, timeout time.Duration) error {
	return serve(conn, src, timeout, maxBody)
}

// serve is Serve with the size of a reply's parts as a parameter, so tests
// can split small replies.
func serve(conn net.Conn, src Source, timeout time.Duration, part int) error {
	if timeout > 0 {
		if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Errorf("serve operator query: %w", err)
		}
	}
	frame, err := wire.ReadFrame(conn, wire.MaxFrame)
	if err != nil {
		return fmt.Errorf("serve operator query: %w", err)
	}
	var reply wire.OperatorReply
	var qerr error
	switch m, err := wire.Decode(frame); {
	case err != nil:
		qerr = fmt.Errorf("serve operator query: %w", err)
		reply = errorReply("invalid operator query: " + err.Error())
	default:
		q, ok := m.(wire.OperatorQuery)
		if !ok {
			qerr = fmt.Errorf("serve operator query: unexpected message %T", m)
			reply = errorReply(fmt.Sprintf("invalid operator query: unexpected message %T", m))
		} else {
			reply = Answer(q, src)
		}
	}
	if timeout > 0 {
		if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
			return fmt.Errorf("serve operator query: %w", err)
		}
	}
	if err := writeReply(conn, reply, part); err != nil {
		return fmt.Errorf("serve operator query: %w", err)
	}
	return qerr
}

// writeReply writes reply as one frame when its body is at most part bytes,
// and otherwise as parts of part bytes followed by a reply frame holding the
// rest. A reply that fits one frame is therefore what every meshc, older
// ones included, reads.
func writeReply(w io.Writer, reply wire.OperatorReply, part int) error {
	body := reply.Body
	for reply.OK && len(body) > part {
		if err := wire.WriteMessage(w, wire.OperatorReplyPart{Body: body[:part]}); err != nil {
			return err
		}
		body = body[part:]
	}
	reply.Body = body
	return wire.WriteMessage(w, reply)
}

// newLease is the JSON form of l; nil stays nil.
func newLease(l *LeaseView) *Lease {
	if l == nil {
		return nil
	}
	return &Lease{Holder: l.Holder, Epoch: l.Epoch, ExpiresInMS: max(l.ExpiresIn, 0).Milliseconds()}
}
