// Package api is the backend's HTTP surface: routes, request validation, the
// JSON shapes and the mapping of storage and runtime errors to status codes.
// No response and no log line carries a driver error's text unredacted, the
// DATABASE_URL or the cluster cookie.
package api

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"meshgo.dev/mesh"

	"reference-backend/jobs"
)

// Probe paths of the Mesh runtime, mounted as they are.
const (
	LivenessPath  = "/livez"
	ReadinessPath = "/readyz"
)

// MaxBodyBytes bounds a POST /jobs body; a larger one is answered 413.
const MaxBodyBytes = 16 << 10

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 128

// Store is what the API needs from the jobs table (*jobs.Store).
type Store interface {
	Create(ctx context.Context, id, kind string, payload json.RawMessage, idempotencyKey string) (jobs.Job, bool, error)
	Get(ctx context.Context, id string) (jobs.Job, error)
	List(ctx context.Context, state string, limit int) ([]jobs.Job, error)
	Refuse(ctx context.Context, id, reason string) error
	Signals(ctx context.Context) (jobs.Signals, error)
}

// Submission is the runtime's answer to one job submission.
type Submission struct {
	Outcome string // mesh.OutcomeCreated, OutcomeDuplicate, OutcomeConflict or OutcomeRejected
	Reason  string // the refusal reason of a rejected submission
}

// Submitter hands a stored job to the cluster as declared work keyed by its
// id. An error means nothing was stored; its refusal reason, when it carries
// one, is safe to show.
type Submitter func(ctx context.Context, jobID string) (Submission, error)

// Runtime reports this node's place in the cluster for /health.
type Runtime func() RuntimeInfo

// RuntimeInfo is the runtime name of the declared work jobs are submitted
// as, and the node's name, role and promotion epoch.
type RuntimeInfo struct {
	Handler string `json:"clustered_handler"`
	Node    string `json:"node"`
	Role    string `json:"cluster_role"`
	Epoch   uint64 `json:"promotion_epoch"`
}

// Server serves the jobs API.
type Server struct {
	store   Store
	submit  Submitter
	runtime Runtime
	logger  *log.Logger
	redact  func(string) string
}

// NewServer returns the API over store, submitting through submit. redact
// scrubs secrets from error text before it is logged.
func NewServer(store Store, submit Submitter, runtime Runtime, logger *log.Logger, redact func(string) string) *Server {
	if redact == nil {
		redact = func(s string) string { return s }
	}
	return &Server{store: store, submit: submit, runtime: runtime, logger: logger, redact: redact}
}

// Handler returns the routes: GET /health, POST /jobs, GET /jobs,
// GET /jobs/{id} and the runtime's probes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.Handle("GET "+LivenessPath, mesh.LivenessHandler())
	mux.Handle("GET "+ReadinessPath, mesh.ReadinessHandler())
	mux.HandleFunc("POST /jobs", s.create)
	mux.HandleFunc("GET /jobs", s.list)
	mux.HandleFunc("GET /jobs/{id}", s.get)
	return mux
}

// Error messages clients see.
const (
	msgMalformed      = "malformed JSON body"
	msgKindRequired   = "kind is required"
	msgBodyTooLarge   = "request body too large"
	msgInvalidID      = "invalid job id"
	msgNotFound       = "job not found"
	msgInvalidState   = "invalid state; expected one of queued, running, succeeded, failed"
	msgInvalidLimit   = "invalid limit; expected an integer from 1 to 100"
	msgInvalidKey     = "invalid Idempotency-Key; expected 1 to 128 visible ASCII characters"
	msgKeyConflict    = "Idempotency-Key already used for a different job"
	msgInternal       = "internal error"
	msgNotMigrated    = "database schema is not migrated; run meshc migrate . up"
	msgDatabaseDown   = "database unavailable"
	msgClusterRefused = "cluster refused the job"
)

type errorBody struct {
	Error string `json:"error"`
	ID    string `json:"id,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) // a write error means the client went away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

// storeFailed logs err (redacted) and answers 503 for a missing schema, 500
// otherwise: the driver's text never reaches the client.
func (s *Server) storeFailed(w http.ResponseWriter, op string, err error) {
	s.logger.Printf("%s failed: %s", op, oneLine(s.redact(err.Error())))
	if errors.Is(err, jobs.ErrNotMigrated) {
		writeError(w, http.StatusServiceUnavailable, msgNotMigrated)
		return
	}
	writeError(w, http.StatusInternalServerError, msgInternal)
}

type createRequest struct {
	Kind    string          `json:"kind"`
	Payload json.RawMessage `json:"payload"`
}

type createResponse struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Replayed bool   `json:"idempotent_replay"`
}

var keyPattern = regexp.MustCompile(`^[\x21-\x7e]+$`)

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	if _, set := r.Header["Idempotency-Key"]; set && (len(key) > maxIdempotencyKey || !keyPattern.MatchString(key)) {
		writeError(w, http.StatusBadRequest, msgInvalidKey)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, msgBodyTooLarge)
			return
		}
		writeError(w, http.StatusBadRequest, msgMalformed)
		return
	}
	var req createRequest
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		writeError(w, http.StatusBadRequest, msgMalformed)
		return
	}
	if req.Kind == "" {
		writeError(w, http.StatusBadRequest, msgKindRequired)
		return
	}
	payload, err := jobs.Validate(req.Kind, req.Payload)
	switch {
	case errors.Is(err, jobs.ErrPayloadTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	job, created, err := s.store.Create(r.Context(), newID(), req.Kind, payload, key)
	if errors.Is(err, jobs.ErrIdempotencyConflict) {
		writeError(w, http.StatusConflict, msgKeyConflict)
		return
	}
	if err != nil {
		s.storeFailed(w, "create job", err)
		return
	}
	if job.State == jobs.StateQueued {
		// New, or a retry of a job the cluster has not taken yet: submit
		// (again). The runtime answers a repeated key as a duplicate.
		sub, err := s.submit(r.Context(), job.ID)
		if err != nil {
			reason := mesh.RefusalReason(err)
			if reason == "" {
				reason = "unavailable"
			}
			s.logger.Printf("job=%s submit failed reason=%s", job.ID, reason)
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msgClusterRefused + ": " + reason, ID: job.ID})
			return
		}
		switch sub.Outcome {
		case mesh.OutcomeCreated, mesh.OutcomeDuplicate:
		default:
			reason := sub.Reason
			if reason == "" {
				reason = sub.Outcome
			}
			if err := s.store.Refuse(r.Context(), job.ID, reason); err != nil {
				s.logger.Printf("job=%s record refusal failed: %s", job.ID, oneLine(s.redact(err.Error())))
			}
			s.logger.Printf("job=%s refused by the cluster outcome=%s reason=%s", job.ID, sub.Outcome, reason)
			writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: msgClusterRefused + ": " + reason, ID: job.ID})
			return
		}
	}
	w.Header().Set("Location", "/jobs/"+job.ID)
	writeJSON(w, http.StatusAccepted, createResponse{ID: job.ID, State: job.State, Replayed: !created})
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := strings.ToLower(r.PathValue("id"))
	if !uuidPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, msgInvalidID)
		return
	}
	job, err := s.store.Get(r.Context(), id)
	if errors.Is(err, jobs.ErrNotFound) {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	if err != nil {
		s.storeFailed(w, "get job", err)
		return
	}
	writeJSON(w, http.StatusOK, job)
}

type listResponse struct {
	State string     `json:"state"`
	Limit int        `json:"limit"`
	Jobs  []jobs.Job `json:"jobs"`
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state != "" && !validState(state) {
		writeError(w, http.StatusBadRequest, msgInvalidState)
		return
	}
	limit := jobs.DefaultListLimit
	if raw := q.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > jobs.MaxListLimit {
			writeError(w, http.StatusBadRequest, msgInvalidLimit)
			return
		}
		limit = n
	}
	list, err := s.store.List(r.Context(), state, limit)
	if err != nil {
		s.storeFailed(w, "list jobs", err)
		return
	}
	if list == nil {
		list = []jobs.Job{}
	}
	writeJSON(w, http.StatusOK, listResponse{State: state, Limit: limit, Jobs: list})
}

func validState(s string) bool {
	for _, v := range jobs.States {
		if s == v {
			return true
		}
	}
	return false
}

// healthBody is the /health response. Field order is the JSON key order.
type healthBody struct {
	Status    string `json:"status"`
	DBBackend string `json:"db_backend"`
	RuntimeInfo
	jobs.Signals
	Error string `json:"error,omitempty"`
}

// health reports the node, its role and epoch and the recovery signals. The
// signals come from the database; when it does not answer, /health says so
// with 503 and status degraded.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	body := healthBody{Status: "ok", DBBackend: "postgres", RuntimeInfo: s.runtime()}
	sig, err := s.store.Signals(r.Context())
	if err != nil {
		s.logger.Printf("health: %s", oneLine(s.redact(err.Error())))
		body.Status, body.Error = "degraded", msgDatabaseDown
		if errors.Is(err, jobs.ErrNotMigrated) {
			body.Error = msgNotMigrated
		}
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body.Signals = sig
	writeJSON(w, http.StatusOK, body)
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// oneLine folds a multi-line error into one log line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
