package mesh

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
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

// hashedHeaders are the request headers that take part in the payload hash.
var hashedHeaders = []string{"Content-Type", "Content-Encoding", "Accept"}

// routeHandler is the http.Handler Clustered returns.
type routeHandler struct {
	name  string
	count int
	node  *Node // nil: the process's default node
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
	h, _ := n.handlers.get(rh.name)
	var body []byte
	var err error
	if r.Body != nil && r.Body != http.NoBody {
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.RouteMaxBodyBytes))
	}
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "request_body_too_large")
			return
		}
		writeJSONError(w, http.StatusBadRequest, "request_body_unreadable")
		return
	}
	pathValues := routePathValues(r)
	key := r.Header.Get(HeaderIdempotencyKey)
	idempotent := key != ""
	if idempotent {
		if err := validIdempotencyKey(key); err != nil {
			writeJSONError(w, http.StatusBadRequest, err.Error())
			return
		}
	} else {
		key = continuity.RouteKeyPrefix + rh.name + "::" + n.routeSalt + "-" + strconv.FormatUint(n.routeSeq.Add(1), 10)
	}
	w.Header().Set(HeaderRequestKey, key)
	hash := payloadHash(r, pathValues, body)

	dec, err := n.submit(r.Context(), submission{h: h, key: key, hash: hash, count: uint64(rh.count)})
	if err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, continuity.ReasonOf(err))
		return
	}
	rec := dec.Record
	switch dec.Outcome {
	case continuity.OutcomeConflict:
		writeJSONError(w, http.StatusConflict, string(continuity.ReasonRequestKeyConflict))
		return
	case continuity.OutcomeRejected:
		writeJSONError(w, http.StatusServiceUnavailable, rec.Error)
		return
	case continuity.OutcomeDuplicate:
		n.replay(w, rec)
		return
	}

	var resp routeResponse
	if rec.OwnerNode == n.self {
		ctx := withIdentity(r.Context(), Identity{RequestKey: rec.RequestKey, AttemptID: rec.AttemptID(), Epoch: rec.Epoch})
		req := r.WithContext(ctx) // shallow: path values and headers are the request's own
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
		resp, err = n.executeRoute(ctx, h, rec, req, idempotent)
	} else {
		resp, err = n.forwardRoute(r, h, rec, body, pathValues)
	}
	if err != nil {
		if out, rerr := n.reg.Reject(rec.RequestKey, rec.Attempt, continuity.ReasonOf(err)); rerr == nil {
			n.broadcast(out)
		}
		writeJSONError(w, http.StatusServiceUnavailable, continuity.ReasonOf(err))
		return
	}
	resp.writeTo(w)
}

// routeResponse is a buffered handler response.
type routeResponse struct {
	Status int                 `json:"status"`
	Header map[string][]string `json:"header"`
	Body   []byte              `json:"body"`
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

// recorder buffers a handler's response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
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

// executeRoute runs the route handler for rec on this node with req (whose
// context ctx carries the continuity identity), completes the record and
// returns the buffered response.
func (n *Node) executeRoute(ctx context.Context, h *handler, rec continuity.Record, req *http.Request, store bool) (routeResponse, error) {
	gen := n.reg.FenceGeneration()
	if !n.confirmed() {
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonQuarantined}
	}
	rc := &recorder{header: http.Header{}}
	n.running.Add(1)
	n.inflight.Store(rec.RequestKey, rec.Attempt)
	err := n.callSafely(h.name, func() error { h.http.ServeHTTP(rc, req); return nil })
	n.inflight.CompareAndDelete(rec.RequestKey, rec.Attempt)
	n.running.Done()
	if err != nil {
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
		reason := string(continuity.ReasonForwardTimeout)
		if n.stopped.Load() {
			reason = string(continuity.ReasonShuttingDown)
		}
		return routeResponse{}, &continuity.Error{Reason: continuity.Reason(reason)}
	}
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	resp := routeResponse{Status: rc.status, Header: rc.header, Body: rc.body.Bytes()}
	if store {
		if b, err := json.Marshal(resp); err == nil && len(b) <= maxReplayStoredBytes {
			n.reg.SetResponse(rec.RequestKey, rec.Attempt, b)
		}
	}
	if !n.confirmed() {
		return routeResponse{}, &continuity.Error{Reason: continuity.ReasonQuarantined}
	}
	out, err := n.reg.Complete(rec.RequestKey, rec.Attempt, n.self, gen)
	if err != nil {
		return routeResponse{}, err
	}
	n.broadcast(out)
	return resp, nil
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
		fail(string(continuity.ReasonAttemptMismatch))
		return
	}
	ctx, cancel := context.WithDeadline(n.ctx, time.Unix(0, m.DeadlineUnixNano))
	defer cancel()
	s.routes.Store(m.ID, cancel)
	defer s.routes.Delete(m.ID)
	ctx = withIdentity(ctx, Identity{RequestKey: rec.RequestKey, AttemptID: rec.AttemptID(), Epoch: rec.Epoch})
	req, err := http.NewRequestWithContext(ctx, m.Method, m.URI, bytes.NewReader(m.Body))
	if err != nil {
		fail("invalid_forwarded_request")
		return
	}
	req.Host, req.RemoteAddr, req.RequestURI = m.Host, m.RemoteAddr, m.URI
	for _, f := range m.Header {
		req.Header.Add(f.Name, f.Value)
	}
	for _, pv := range m.PathValues {
		req.SetPathValue(pv.Name, pv.Value)
	}
	idempotent := !strings.HasPrefix(m.RequestKey, continuity.RouteKeyPrefix)
	resp, err := n.executeRoute(ctx, h, rec, req, idempotent)
	if err != nil {
		fail(continuity.ReasonOf(err))
		return
	}
	_ = s.send(wire.RouteResponse{ID: m.ID, OK: true, Status: int32(resp.Status), Header: headerFields(resp.Header), Body: resp.Body})
}

// replay answers a request whose key was seen before from the stored outcome.
func (n *Node) replay(w http.ResponseWriter, rec continuity.Record) {
	switch {
	case rec.Phase == continuity.PhaseRejected:
		writeJSONError(w, http.StatusServiceUnavailable, rec.Error)
	case rec.Phase == continuity.PhaseSubmitted:
		writeJSONError(w, http.StatusConflict, "request_in_progress")
	case len(rec.Response) == 0:
		writeJSONError(w, http.StatusConflict, "response_not_replayable")
	default:
		var resp routeResponse
		if err := json.Unmarshal(rec.Response, &resp); err != nil {
			writeJSONError(w, http.StatusConflict, "response_not_replayable")
			return
		}
		resp.writeTo(w)
	}
}

func validIdempotencyKey(k string) error {
	if len(k) > maxIdempotencyKey {
		return fmt.Errorf("invalid Idempotency-Key: longer than %d bytes", maxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c < 0x21 || c > 0x7e {
			return errors.New("invalid Idempotency-Key: only visible ASCII characters are allowed")
		}
	}
	return nil
}

// routePathValues extracts the wildcard values of the matched ServeMux pattern.
func routePathValues(r *http.Request) []wire.HeaderField {
	var out []wire.HeaderField
	for _, seg := range strings.Split(r.Pattern, "/") {
		if !strings.HasPrefix(seg, "{") || !strings.HasSuffix(seg, "}") {
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
// headers and body, each length-prefixed so no two requests encode alike.
func payloadHash(r *http.Request, pathValues []wire.HeaderField, body []byte) string {
	d := sha256.New()
	var lb [8]byte
	field := func(s string) {
		binary.LittleEndian.PutUint64(lb[:], uint64(len(s)))
		d.Write(lb[:])
		io.WriteString(d, s)
	}
	field(r.Method)
	field(r.URL.Path)
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
		field(h)
		vs := r.Header[h]
		switch len(vs) {
		case 0:
			field("")
		case 1:
			field(vs[0])
		default:
			field(strings.Join(vs, ","))
		}
	}
	binary.LittleEndian.PutUint64(lb[:], uint64(len(body)))
	d.Write(lb[:])
	d.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(d.Sum(sum[:0]))
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

func writeJSONError(w http.ResponseWriter, status int, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(jsonError(reason))
}
