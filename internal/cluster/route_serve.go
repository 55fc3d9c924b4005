package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/exchange"
	"meshgo.dev/mesh/internal/wire"
)

// Headers of the clustered-route contract.
const (
	// HeaderRequestKey carries the continuity request key on every response
	// of a clustered route: an operator and debugging seam.
	HeaderRequestKey = exchange.HeaderRequestKey
	// HeaderIdempotencyKey, sent by a client, becomes the request key: a
	// retried request is answered from the first execution's stored outcome.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Bounds of idempotent replay.
const (
	maxIdempotencyKey    = 255
	maxReplayStoredBytes = 64 << 10 // with the retention bound, caps memory held for replay
)

// routeHandler is the http.Handler Clustered returns.
type routeHandler struct {
	name  string
	count int
	node  *Node // nil: the process's default node

	// resolved caches the declared handler found in a node's handler
	// registry; handlers are never replaced once added, so the entry stays
	// right for as long as the node uses that registry.
	resolved atomic.Pointer[resolvedHandler]
}

type resolvedHandler struct {
	in *registry
	h  *handler
}

// handlerFor returns the declared handler of rh in n's registry.
func (rh *routeHandler) handlerFor(n *Node) (*handler, bool) {
	if c := rh.resolved.Load(); c != nil && c.in == n.handlers {
		return c.h, true
	}
	h, ok := n.handlers.get(rh.name)
	if ok {
		rh.resolved.Store(&resolvedHandler{in: n.handlers, h: h})
	}
	return h, ok
}

// For returns a copy of the clustered route h served by node n instead of the
// process's default node, for programs (and tests) that run several nodes in
// one process. Handlers that are not clustered routes are returned unchanged.
func (n *Node) For(h http.Handler) http.Handler {
	if rh, ok := h.(*routeHandler); ok {
		return &routeHandler{name: rh.name, count: rh.count, node: n}
	}
	return h
}

func (rh *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := rh.node
	if n == nil {
		n = NodeFor(r.Context())
	}
	rw := n.met.routeStart(w)
	defer n.met.routeDone(rw)
	if rw != nil {
		w = rw
	}
	h, ok := rh.handlerFor(n)
	if !ok || h.kind != continuity.KindRoute {
		writeJSONError(w, http.StatusServiceUnavailable, string(continuity.ReasonHandlerNotRegistered))
		return
	}
	var body []byte
	var err error
	if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.RouteMaxBodyBytes))
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, string(continuity.ReasonRequestBodyTooLarge))
			return
		}
		writeJSONError(w, http.StatusBadRequest, "request_body_unreadable")
		return
	}
	pathValues := routePathValues(r)
	key, hash, placed, idempotent, reason := n.routeKey(h, r, pathValues, body)
	if reason != "" {
		writeJSONError(w, http.StatusBadRequest, string(reason))
		return
	}
	ident := routeIdentity(r.Context(), n, key)
	w.Header()[HeaderRequestKey] = ident.keyHeader() // the name is in canonical form

	// The decision is filled in place and its record used from there: a
	// record is several hundred bytes, and each copy costs on every request.
	var dec continuity.Decision
	err = n.submitTo(r.Context(), &submission{h: h, key: key, hash: hash, count: uint64(rh.count), placed: placed}, &dec)
	if err == nil && dec.Outcome == continuity.OutcomeDuplicate {
		err = n.answerDuplicate(dec.Record)
	}
	if err != nil {
		n.writeRefusal(w, http.StatusServiceUnavailable, continuity.ReasonOf(err))
		return
	}
	rec := &dec.Record
	switch dec.Outcome {
	case continuity.OutcomeConflict:
		rw.setOutcome(routeConflict)
		writeJSONError(w, http.StatusConflict, string(continuity.ReasonRequestKeyConflict))
		return
	case continuity.OutcomeRejected:
		n.writeRefusal(w, http.StatusServiceUnavailable, rec.Error)
		return
	case continuity.OutcomeDuplicate:
		next, rerun := n.rerunRoute(h, *rec) // Rerunnable: runs again below
		if !rerun {
			rw.setOutcome(routeReplayed)
			n.replay(w, next, &h.route)
			return
		}
		*rec = next
	}

	var resp exchange.Response
	if rec.OwnerNode == n.self {
		ident.setRecord(rec)
		ctx := context.Context(ident)
		req := r.WithContext(ctx) // shallow: path values and headers are the request's own
		req.Body, req.ContentLength = http.NoBody, 0
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		resp, err = n.executeRoute(ctx, h, rec, req, idempotent)
	} else {
		resp, err = n.forwardRoute(r, h, *rec, body, pathValues)
		// A mirrored record's outcome reached this node (the ingress and
		// replica) before the owner's reply did; it is durable here too
		// before the client has its answer, so the answer survives losing
		// either node's disk.
		if err == nil && rec.ReplicationCount >= 2 && replicaAckAfterFsync {
			if serr := n.syncRecords(); serr != nil {
				resp.Release()
				resp, err = exchange.Response{}, serr
			}
		}
	}
	if err != nil {
		reason := continuity.ReasonOf(err)
		if out, ran := n.refuse(*rec, reason); !ran {
			reason = out.Error // the stored rejection's, when the record was already rejected
		}
		n.writeRefusal(w, http.StatusServiceUnavailable, reason)
		return
	}
	rw.served(rec.OwnerNode != n.self)
	resp.WriteTo(w)
	resp.Release()
}

// serveSafely runs a route handler, turning a panic into an error.
func (n *Node) serveSafely(h *handler, w http.ResponseWriter, req *http.Request) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = n.handlerPanicked(h.name, v)
		}
	}()
	h.http.ServeHTTP(w, req)
	return nil
}

// executeRoute runs the route handler for rec on this node with req (whose
// context ctx carries the continuity identity), completes the record and
// returns the buffered response. When store is set (the key came from the
// client) the response is kept on the record for replay.
func (n *Node) executeRoute(ctx context.Context, h *handler, rec *continuity.Record, req *http.Request, store bool) (exchange.Response, error) {
	gen := n.reg.FenceGeneration()
	if !n.confirmed() && !n.holdForSwitchover(ctx) {
		return exchange.Response{}, n.unconfirmedError()
	}
	if !n.running.add() {
		return exchange.Response{}, &continuity.Error{Reason: continuity.ReasonShuttingDown}
	}
	rc := exchange.NewRecorder()
	// Loss handling asks whether a pending record whose ingress died is
	// running here; a request that arrived here has no other ingress to lose,
	// so only forwarded requests need the entry.
	tracked := rec.IngressNode != n.self
	if tracked {
		n.inflight.add(rec.RequestKey, rec.Attempt)
	}
	err := n.serveSafely(h, rc, req)
	if tracked {
		n.inflight.done(rec.RequestKey, rec.Attempt)
	}
	n.running.done()
	if err != nil {
		rc.Release()
		_, _ = n.recordRejection(rec.RequestKey, rec.Attempt, err.Error())
		return exchange.Response{Status: http.StatusInternalServerError,
			Header: map[string][]string{"Content-Type": {"application/json"}},
			Body:   jsonError(string(continuity.ReasonHandlerPanicked))}, nil
	}
	if err := ctx.Err(); err != nil {
		// The request was cancelled or timed out (or this node is stopping)
		// while the handler ran: whatever it wrote is not an outcome.
		rc.Release()
		reason := string(continuity.ReasonForwardTimeout)
		if n.stopped.Load() {
			reason = string(continuity.ReasonShuttingDown)
		}
		return exchange.Response{}, &continuity.Error{Reason: continuity.Reason(reason)}
	}
	resp := rc.Response()
	var stored []byte
	if store {
		if b := exchange.AppendStored(nil, resp, &exchange.Policy{Replay: h.route.replay}); len(b) <= maxReplayStoredBytes {
			stored = b
		}
	}
	if !n.confirmed() && !n.holdForSwitchover(ctx) {
		resp.Release()
		return exchange.Response{}, n.unconfirmedError()
	}
	if _, err := n.recordCompletionWithResponse(rec.RequestKey, rec.Attempt, gen, stored); err != nil {
		resp.Release()
		return exchange.Response{}, err
	}
	// The completed record, with the response a retry replays, is durable
	// here, and a count-2 record is held by its replica (outcome.go), before
	// the response leaves this node. The replica is asked first, so its
	// fsync overlaps this one.
	held := n.beginHeld(rec) // the completed version has rec's placement and attempt
	if err := n.syncRecords(); err != nil {
		n.awaitHeld(held, rec)
		resp.Release()
		return exchange.Response{}, err
	}
	n.awaitHeld(held, rec)
	return resp, nil
}

// forwardRoute sends the request to the record's owner and waits, within the
// route timeout and the client's own context, for its response.
func (n *Node) forwardRoute(r *http.Request, h *handler, rec continuity.Record, body []byte, pathValues []wire.HeaderField) (exchange.Response, error) {
	s := n.session(rec.OwnerNode)
	if s == nil {
		return exchange.Response{}, &continuity.Error{Reason: continuity.ReasonOwnerUnreachable}
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.RouteTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	id := n.callID.Add(1)
	msg := wire.RouteRequest{ID: id, RuntimeName: h.name, RequestKey: rec.RequestKey, Attempt: rec.Attempt, Epoch: rec.Epoch,
		DeadlineUnixNano: deadline.UnixNano(), Method: r.Method, URI: r.URL.RequestURI(), Host: r.Host, RemoteAddr: r.RemoteAddr,
		Header: headerFields(r.Header), PathValues: pathValues, Body: body}
	defer n.met.forwardLatency.since(time.Now())
	reply, err := s.call(ctx, id, msg)
	if err != nil {
		if ctx.Err() != nil {
			_ = s.send(wire.RouteCancel{ID: id})
			return exchange.Response{}, &continuity.Error{Reason: continuity.ReasonForwardTimeout}
		}
		// The link closed with the request sent or queued: the owner may
		// have run it.
		return exchange.Response{}, &continuity.Error{Reason: continuity.ReasonOutcomeUnknown}
	}
	resp := reply.(wire.RouteResponse)
	if !resp.OK {
		return exchange.Response{}, errors.New(resp.Reason)
	}
	hdr := map[string][]string{}
	for _, f := range resp.Header {
		hdr[f.Name] = append(hdr[f.Name], f.Value)
	}
	return exchange.Response{Status: int(resp.Status), Header: hdr, Body: resp.Body}, nil
}

// serveRemoteRoute executes a route request forwarded by the ingress node.
func (n *Node) serveRemoteRoute(s *session, m wire.RouteRequest) {
	fail := func(reason string) { _ = s.send(wire.RouteResponse{ID: m.ID, Reason: reason}) }
	h, ok := n.handlers.get(m.RuntimeName)
	if !ok || h.kind != continuity.KindRoute {
		fail(string(continuity.ReasonHandlerNotRegistered) + ":" + m.RuntimeName)
		return
	}
	rec, ok := n.reg.Get(m.RequestKey)
	if !ok {
		fail(string(continuity.ReasonRequestKeyNotFound))
		return
	}
	if rec.Attempt != m.Attempt || !rec.Pending() {
		if rec.Phase == continuity.PhaseCompleted && rec.Kind == continuity.KindRoute && rec.RuntimeName == m.RuntimeName {
			n.replayForwarded(s, m, &rec)
			return
		}
		fail(string(continuity.ReasonAttemptMismatch))
		return
	}
	ctx, cancel := context.WithDeadline(n.ctx, time.Unix(0, m.DeadlineUnixNano))
	defer cancel()
	s.routes.Store(m.ID, cancel)
	defer s.routes.Delete(m.ID)
	ctx = withIdentity(ctx, n, &rec)
	req, err := http.NewRequestWithContext(ctx, m.Method, m.URI, bytes.NewReader(m.Body))
	if err != nil {
		fail(string(continuity.ReasonInvalidForwardedRequest))
		return
	}
	req.Host, req.RemoteAddr, req.RequestURI = m.Host, m.RemoteAddr, m.URI
	for _, f := range m.Header {
		req.Header.Add(f.Name, f.Value)
	}
	for _, pv := range m.PathValues {
		req.SetPathValue(pv.Name, pv.Value)
	}
	resp, err := n.executeRoute(ctx, h, &rec, req, clientKeyed(m.RequestKey))
	if err != nil {
		fail(continuity.ReasonOf(err))
		return
	}
	_ = s.send(wire.RouteResponse{ID: m.ID, OK: true, Status: int32(resp.Status), Header: headerFields(resp.Header), Body: resp.Body})
	resp.Release() // send encoded the response
}

// replayForwarded answers a forwarded request whose key this owner has
// already completed under another attempt: the ingress did not know the
// outcome yet (a retry that reached it before the completion did) and opened
// a new attempt. The request is not run again; the first outcome is sent
// back, the same bytes a duplicate on this node would get, and the completed
// record follows so the ingress's new attempt gives way to it.
func (n *Node) replayForwarded(s *session, m wire.RouteRequest, rec *continuity.Record) {
	fail := func(reason continuity.Reason) { _ = s.send(wire.RouteResponse{ID: m.ID, Reason: string(reason)}) }
	n.answer(*rec)
	req, err := http.NewRequest(m.Method, m.URI, nil)
	if err != nil {
		fail(continuity.ReasonInvalidForwardedRequest)
		return
	}
	for _, f := range m.Header {
		req.Header.Add(f.Name, f.Value)
	}
	if exchange.PayloadHash(req, m.PathValues, m.Body) != rec.PayloadHash {
		fail(continuity.ReasonRequestKeyConflict)
		return
	}
	if len(rec.Response) == 0 {
		fail(continuity.ReasonResponseNotReplayable)
		return
	}
	resp, err := exchange.DecodeStored(rec.Response)
	if err != nil {
		fail(continuity.ReasonResponseNotReplayable)
		return
	}
	_ = s.send(wire.RouteResponse{ID: m.ID, OK: true, Status: int32(resp.Status), Header: headerFields(resp.Header), Body: resp.Body})
}

// replay answers a request whose key was seen before from the stored
// outcome, without the header fields opts does not let replay (a record
// stored by a node that kept them has them dropped here).
func (n *Node) replay(w http.ResponseWriter, rec continuity.Record, opts *routeOptions) {
	switch {
	case rec.Phase == continuity.PhaseRejected:
		n.writeRefusal(w, http.StatusServiceUnavailable, rec.Error)
	case rec.Phase == continuity.PhaseSubmitted:
		writeJSONError(w, http.StatusConflict, string(continuity.ReasonRequestInProgress))
	case len(rec.Response) == 0:
		writeJSONError(w, http.StatusConflict, string(continuity.ReasonResponseNotReplayable))
	default:
		resp, err := exchange.DecodeStored(rec.Response)
		if err != nil {
			writeJSONError(w, http.StatusConflict, string(continuity.ReasonResponseNotReplayable))
			return
		}
		policy := exchange.Policy{Replay: opts.replay}
		connection := exchange.ConnectionHeader(resp.Header)
		for k := range resp.Header {
			if !policy.Replayable(k, connection) {
				delete(resp.Header, k)
			}
		}
		resp.WriteTo(w)
	}
}

// routePathValues extracts the wildcard values of the matched ServeMux pattern.
func routePathValues(r *http.Request) []wire.HeaderField {
	if strings.IndexByte(r.Pattern, '{') < 0 {
		return nil // no wildcard: most routes
	}
	var out []wire.HeaderField
	rest := r.Pattern
	for rest != "" {
		var seg string
		seg, rest, _ = strings.Cut(rest, "/")
		if len(seg) < 2 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			continue
		}
		name := strings.TrimSuffix(strings.TrimSuffix(seg[1:len(seg)-1], "..."), "$")
		if name == "" {
			continue
		}
		out = append(out, wire.HeaderField{Name: name, Value: r.PathValue(name)})
	}
	return out
}

func headerFields(h map[string][]string) []wire.HeaderField {
	out := make([]wire.HeaderField, 0, len(h))
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, wire.HeaderField{Name: k, Value: v})
		}
	}
	return out
}

func jsonError(reason string) []byte {
	b, _ := json.Marshal(map[string]string{"error": reason})
	return append(b, '\n')
}

// writeRefusal answers a request the runtime refuses. Every refusal leaves
// the node with a reason from the documented set: an empty one is a defect,
// logged as an error and answered as reason_unspecified.
func (n *Node) writeRefusal(w http.ResponseWriter, status int, reason string) {
	if reason == "" {
		n.log.Error("[mesh-rt continuity] refusal without a reason", "request_key", w.Header().Get(HeaderRequestKey))
		reason = string(continuity.ReasonUnspecified)
	}
	writeJSONError(w, status, reason)
}

func writeJSONError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(jsonError(reason))
}
