package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/wire"
)

// Headers of the clustered-route contract.
const (
	// HeaderRequestKey carries the continuity request key on every response
	// of a clustered route: an operator and debugging seam.
	HeaderRequestKey = "X-Mesh-Continuity-Request-Key"
	// HeaderIdempotencyKey, sent by a client, becomes the request key: a
	// retried request is answered from the first execution's stored outcome.
	HeaderIdempotencyKey = "Idempotency-Key"
)

// Bounds of idempotent replay.
const (
	maxIdempotencyKey    = 255
	maxReplayStoredBytes = 64 << 10 // with the retention bound, caps memory held for replay
)

// hashedHeaders are the request headers that take part in the payload hash,
// in the order they are encoded.
var hashedHeaders = []string{"Content-Type", "Content-Encoding", "Accept"}

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
		n = Default()
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
	key, idempotent, reason := n.routeKey(h, r)
	if reason != "" {
		writeJSONError(w, http.StatusBadRequest, string(reason))
		return
	}
	w.Header()[HeaderRequestKey] = []string{key} // the name is in canonical form
	hash := payloadHash(r, pathValues, body)

	dec, err := n.submit(r.Context(), submission{h: h, key: key, hash: hash, count: uint64(rh.count)})
	if err == nil && dec.Outcome == continuity.OutcomeDuplicate {
		err = n.answerDuplicate(dec.Record)
	}
	if err != nil {
		n.writeRefusal(w, http.StatusServiceUnavailable, continuity.ReasonOf(err))
		return
	}
	rec := dec.Record
	switch dec.Outcome {
	case continuity.OutcomeConflict:
		writeJSONError(w, http.StatusConflict, string(continuity.ReasonRequestKeyConflict))
		return
	case continuity.OutcomeRejected:
		n.writeRefusal(w, http.StatusServiceUnavailable, rec.Error)
		return
	case continuity.OutcomeDuplicate:
		n.replay(w, rec, &h.route)
		return
	}

	var resp routeResponse
	if rec.OwnerNode == n.self {
		ctx := withIdentity(r.Context(), &rec)
		req := r.WithContext(ctx) // shallow: path values and headers are the request's own
		req.Body, req.ContentLength = http.NoBody, 0
		if len(body) > 0 {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.ContentLength = int64(len(body))
		}
		resp, err = n.executeRoute(ctx, h, rec, req, idempotent)
	} else {
		resp, err = n.forwardRoute(r, h, rec, body, pathValues)
	}
	if err != nil {
		reason := continuity.ReasonOf(err)
		if out, ran := n.refuse(rec, reason); !ran {
			reason = out.Error // the stored rejection's, when the record was already rejected
		}
		n.writeRefusal(w, http.StatusServiceUnavailable, reason)
		return
	}
	resp.writeTo(w)
	resp.release()
}

// routeResponse is a buffered handler response.
type routeResponse struct {
	Status int
	Header map[string][]string
	Body   []byte
	rc     *recorder // the buffers Header and Body live in, when pooled
}

func (rr routeResponse) writeTo(w http.ResponseWriter) {
	dst := w.Header()
	for k, vs := range rr.Header {
		if k == HeaderRequestKey {
			continue
		}
		dst[k] = vs // the recorder's header belongs to this response alone
	}
	w.WriteHeader(rr.Status)
	_, _ = w.Write(rr.Body)
}

// release returns the response's buffers for reuse; rr must not be used
// afterwards.
func (rr routeResponse) release() {
	if rr.rc != nil {
		rr.rc.release()
	}
}

// recorder buffers a handler's response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// maxPooledBody is the largest response body buffer kept for reuse.
const maxPooledBody = 64 << 10

var recorders = sync.Pool{New: func() any { return &recorder{header: http.Header{}} }}

func newRecorder() *recorder { return recorders.Get().(*recorder) }

// release clears c and returns it to the pool. The header's value slices
// were handed to the real response and are dropped, never reused.
func (c *recorder) release() {
	if c.body.Cap() > maxPooledBody || len(c.header) > 64 {
		return
	}
	clear(c.header)
	c.status = 0
	c.body.Reset()
	recorders.Put(c)
}

func (c *recorder) Header() http.Header { return c.header }

func (c *recorder) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

func (c *recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
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
func (n *Node) executeRoute(ctx context.Context, h *handler, rec continuity.Record, req *http.Request, store bool) (routeResponse, error) {
	gen := n.reg.FenceGeneration()
	if !n.confirmed() {
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonQuarantined}
	}
	if !n.running.add() {
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonShuttingDown}
	}
	rc := newRecorder()
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
		rc.release()
		if out, rerr := n.reg.Reject(rec.RequestKey, rec.Attempt, err.Error()); rerr == nil {
			n.broadcast(out)
		}
		return routeResponse{Status: http.StatusInternalServerError,
			Header: map[string][]string{"Content-Type": {"application/json"}},
			Body:   jsonError(string(continuity.ReasonHandlerPanicked))}, nil
	}
	if err := ctx.Err(); err != nil {
		// The request was cancelled or timed out (or this node is stopping)
		// while the handler ran: whatever it wrote is not an outcome.
		rc.release()
		reason := string(continuity.ReasonForwardTimeout)
		if n.stopped.Load() {
			reason = string(continuity.ReasonShuttingDown)
		}
		return routeResponse{}, &continuity.Error{Reason: continuity.Reason(reason)}
	}
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	resp := routeResponse{Status: rc.status, Header: rc.header, Body: rc.body.Bytes(), rc: rc}
	var stored []byte
	if store {
		if b := appendStoredResponse(nil, resp, &h.route); len(b) <= maxReplayStoredBytes {
			stored = b
		}
	}
	if !n.confirmed() {
		resp.release()
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonQuarantined}
	}
	out, err := n.reg.CompleteWithResponse(rec.RequestKey, rec.Attempt, n.self, gen, stored)
	if err != nil {
		resp.release()
		return routeResponse{}, err
	}
	n.broadcast(out)
	return resp, nil
}

// storedResponseVersion leads the encoding of a stored response.
const storedResponseVersion = 1

// appendStoredResponse appends the replay encoding of resp to dst: a version
// byte, the status, the header fields (sorted by name, so equal responses
// encode alike) and the body, each length-prefixed with uvarints. Header
// fields opts does not let replay (credentials, hop-by-hop) are left out; nil
// opts keeps every field.
func appendStoredResponse(dst []byte, resp routeResponse, opts *routeOptions) []byte {
	var stack [16]string
	names := stack[:0]
	fields, size := 0, 1+3*binary.MaxVarintLen64+len(resp.Body)
	var connection []string
	if opts != nil {
		connection = connectionHeader(resp.Header)
	}
	for k, vs := range resp.Header {
		if k == HeaderRequestKey || opts != nil && !opts.replayable(k, connection) {
			continue
		}
		names = append(names, k)
		fields += len(vs)
		for _, v := range vs {
			size += 2*binary.MaxVarintLen64 + len(k) + len(v)
		}
	}
	sort.Strings(names)
	dst = slices.Grow(dst, size)
	dst = append(dst, storedResponseVersion)
	dst = binary.AppendUvarint(dst, uint64(resp.Status))
	dst = binary.AppendUvarint(dst, uint64(fields))
	for _, k := range names {
		for _, v := range resp.Header[k] {
			dst = binary.AppendUvarint(dst, uint64(len(k)))
			dst = append(dst, k...)
			dst = binary.AppendUvarint(dst, uint64(len(v)))
			dst = append(dst, v...)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(resp.Body)))
	return append(dst, resp.Body...)
}

var errStoredResponse = errors.New("malformed stored response")

// decodeStoredResponse parses appendStoredResponse's encoding.
func decodeStoredResponse(b []byte) (routeResponse, error) {
	if len(b) == 0 || b[0] != storedResponseVersion {
		return routeResponse{}, errStoredResponse
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)) {
			return nil, false
		}
		out := b[:l:l]
		b = b[l:]
		return out, true
	}
	status, ok := uv()
	if !ok || status < 100 || status > 999 {
		return routeResponse{}, errStoredResponse
	}
	fields, ok := uv()
	if !ok || fields > uint64(len(b)) {
		return routeResponse{}, errStoredResponse
	}
	hdr := make(map[string][]string, fields)
	for range fields {
		k, ok1 := bytesOf()
		v, ok2 := bytesOf()
		if !ok1 || !ok2 {
			return routeResponse{}, errStoredResponse
		}
		hdr[string(k)] = append(hdr[string(k)], string(v))
	}
	body, ok := bytesOf()
	if !ok || len(b) != 0 {
		return routeResponse{}, errStoredResponse
	}
	return routeResponse{Status: int(status), Header: hdr, Body: body}, nil
}

// forwardRoute sends the request to the record's owner and waits, within the
// route timeout and the client's own context, for its response.
func (n *Node) forwardRoute(r *http.Request, h *handler, rec continuity.Record, body []byte, pathValues []wire.HeaderField) (routeResponse, error) {
	s := n.session(rec.OwnerNode)
	if s == nil {
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonOwnerUnreachable}
	}
	ctx, cancel := context.WithTimeout(r.Context(), n.cfg.RouteTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	id := n.callID.Add(1)
	msg := wire.RouteRequest{ID: id, RuntimeName: h.name, RequestKey: rec.RequestKey, Attempt: rec.Attempt, Epoch: rec.Epoch,
		DeadlineUnixNano: deadline.UnixNano(), Method: r.Method, URI: r.URL.RequestURI(), Host: r.Host, RemoteAddr: r.RemoteAddr,
		Header: headerFields(r.Header), PathValues: pathValues, Body: body}
	reply, err := s.call(ctx, id, msg)
	if err != nil {
		if ctx.Err() != nil {
			_ = s.send(wire.RouteCancel{ID: id})
			return routeResponse{}, &continuity.Error{Reason: continuity.ReasonForwardTimeout}
		}
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonOwnerUnreachable}
	}
	resp := reply.(wire.RouteResponse)
	if !resp.OK {
		return routeResponse{}, errors.New(resp.Reason)
	}
	hdr := map[string][]string{}
	for _, f := range resp.Header {
		hdr[f.Name] = append(hdr[f.Name], f.Value)
	}
	return routeResponse{Status: int(resp.Status), Header: hdr, Body: resp.Body}, nil
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
			n.replayForwarded(s, m, rec)
			return
		}
		fail(string(continuity.ReasonAttemptMismatch))
		return
	}
	ctx, cancel := context.WithDeadline(n.ctx, time.Unix(0, m.DeadlineUnixNano))
	defer cancel()
	s.routes.Store(m.ID, cancel)
	defer s.routes.Delete(m.ID)
	ctx = withIdentity(ctx, &rec)
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
	resp, err := n.executeRoute(ctx, h, rec, req, clientKeyed(m.RequestKey))
	if err != nil {
		fail(continuity.ReasonOf(err))
		return
	}
	_ = s.send(wire.RouteResponse{ID: m.ID, OK: true, Status: int32(resp.Status), Header: headerFields(resp.Header), Body: resp.Body})
	resp.release() // send encoded the response
}

// replayForwarded answers a forwarded request whose key this owner has
// already completed under another attempt: the ingress did not know the
// outcome yet (a retry that reached it before the completion did) and opened
// a new attempt. The request is not run again; the first outcome is sent
// back, the same bytes a duplicate on this node would get, and the completed
// record follows so the ingress's new attempt gives way to it.
func (n *Node) replayForwarded(s *session, m wire.RouteRequest, rec continuity.Record) {
	fail := func(reason continuity.Reason) { _ = s.send(wire.RouteResponse{ID: m.ID, Reason: string(reason)}) }
	n.broadcast(rec)
	req, err := http.NewRequest(m.Method, m.URI, nil)
	if err != nil {
		fail(continuity.ReasonInvalidForwardedRequest)
		return
	}
	for _, f := range m.Header {
		req.Header.Add(f.Name, f.Value)
	}
	if payloadHash(req, m.PathValues, m.Body) != rec.PayloadHash {
		fail(continuity.ReasonRequestKeyConflict)
		return
	}
	if len(rec.Response) == 0 {
		fail(continuity.ReasonResponseNotReplayable)
		return
	}
	resp, err := decodeStoredResponse(rec.Response)
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
		resp, err := decodeStoredResponse(rec.Response)
		if err != nil {
			writeJSONError(w, http.StatusConflict, string(continuity.ReasonResponseNotReplayable))
			return
		}
		connection := connectionHeader(resp.Header)
		for k := range resp.Header {
			if !opts.replayable(k, connection) {
				delete(resp.Header, k)
			}
		}
		resp.writeTo(w)
	}
}

// routePathValues extracts the wildcard values of the matched ServeMux pattern.
func routePathValues(r *http.Request) []wire.HeaderField {
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

// payloadHash is the SHA-256 of a canonical encoding of what identifies a
// request: method, path, path values (by name), query (sorted), selected
// headers (by their place in hashedHeaders) and body, each prefixed with its
// uvarint length so no two requests encode alike. A typical request encodes
// into one or two SHA-256 blocks.
func payloadHash(r *http.Request, pathValues []wire.HeaderField, body []byte) string {
	var stack [512]byte
	buf := append(stack[:0], payloadHashVersion)
	field := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	field(r.Method)
	field(r.URL.Path)
	buf = binary.AppendUvarint(buf, uint64(len(pathValues)))
	if len(pathValues) > 1 {
		pathValues = append([]wire.HeaderField(nil), pathValues...)
		sort.Slice(pathValues, func(i, j int) bool { return pathValues[i].Name < pathValues[j].Name })
	}
	for _, pv := range pathValues {
		field(pv.Name)
		field(pv.Value)
	}
	if r.URL.RawQuery == "" {
		field("")
	} else {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		field(q.Encode()) // Encode sorts by key
	}
	for _, h := range hashedHeaders {
		switch vs := r.Header[h]; len(vs) {
		case 0:
			field("")
		case 1:
			field(vs[0])
		default:
			field(strings.Join(vs, ","))
		}
	}
	var sum [sha256.Size]byte
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	if len(buf)+len(body) <= cap(buf) {
		sum = sha256.Sum256(append(buf, body...))
	} else {
		d := sha256.New()
		d.Write(buf)
		d.Write(body)
		d.Sum(sum[:0])
	}
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// payloadHashVersion leads the canonical encoding payloadHash digests, so a
// change of the encoding can never make two different requests hash alike.
// Nodes of different versions compare each other's hashes (a mirrored record
// against a retried request), so the encoding must not change without a
// migration; TestPayloadHashIsStable pins it.
const payloadHashVersion = 2

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
