package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"meshgo.dev/mesh"

	"reference-backend/jobs"
)

// fakeStore keeps jobs in memory; failWith makes every call fail.
type fakeStore struct {
	jobs     map[string]jobs.Job
	keys     map[string]string
	failWith error
	refused  map[string]string
}

func newFakeStore() *fakeStore {
	return &fakeStore{jobs: map[string]jobs.Job{}, keys: map[string]string{}, refused: map[string]string{}}
}

func (f *fakeStore) Create(_ context.Context, id, kind string, payload json.RawMessage, key string) (jobs.Job, bool, error) {
	if f.failWith != nil {
		return jobs.Job{}, false, f.failWith
	}
	if old, ok := f.keys[key]; ok && key != "" {
		j := f.jobs[old]
		if j.Kind != kind || string(j.Payload) != string(payload) {
			return jobs.Job{}, false, jobs.ErrIdempotencyConflict
		}
		return j, false, nil
	}
	j := jobs.Job{ID: id, Kind: kind, Payload: payload, State: jobs.StateQueued}
	f.jobs[id] = j
	if key != "" {
		f.keys[key] = id
	}
	return j, true, nil
}

func (f *fakeStore) Get(_ context.Context, id string) (jobs.Job, error) {
	if f.failWith != nil {
		return jobs.Job{}, f.failWith
	}
	j, ok := f.jobs[id]
	if !ok {
		return jobs.Job{}, jobs.ErrNotFound
	}
	return j, nil
}

func (f *fakeStore) List(_ context.Context, state string, limit int) ([]jobs.Job, error) {
	var out []jobs.Job
	for _, j := range f.jobs {
		if state == "" || j.State == state {
			out = append(out, j)
		}
	}
	return out[:min(len(out), limit)], f.failWith
}

func (f *fakeStore) Refuse(_ context.Context, id, reason string) error {
	f.refused[id] = reason
	return nil
}

func (f *fakeStore) Signals(context.Context) (jobs.Signals, error) {
	return jobs.Signals{RestartCount: 3}, f.failWith
}

type harness struct {
	store   *fakeStore
	submits []string
	outcome Submission
	subErr  error
	logs    bytes.Buffer
	handler http.Handler
}

const secretURL = "postgres://app:s3cret-pw@db.internal:5432/jobs"

func newHarness(t *testing.T) *harness {
	h := &harness{store: newFakeStore(), outcome: Submission{Outcome: mesh.OutcomeCreated}}
	submit := func(_ context.Context, id string) (Submission, error) {
		h.submits = append(h.submits, id)
		return h.outcome, h.subErr
	}
	runtime := func() RuntimeInfo {
		return RuntimeInfo{Handler: "work.RunJob", Node: "a@127.0.0.1:1", Role: "primary", Epoch: 2}
	}
	redact := func(s string) string { return strings.ReplaceAll(s, secretURL, "[redacted]") }
	h.handler = NewServer(h.store, submit, runtime, log.New(&h.logs, "", 0), redact).Handler()
	return h
}

func (h *harness) do(t *testing.T, method, path, body string, headers ...string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object", method, path, rec.Body.String())
	}
	return rec.Code, out
}

func TestCreateAndRetryWithIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	code, body := h.do(t, "POST", "/jobs", `{"kind":"echo","payload":{"x":1}}`, "Idempotency-Key", "order-17")
	if code != http.StatusAccepted || body["state"] != "queued" || body["idempotent_replay"] != false {
		t.Fatalf("create: %d %v", code, body)
	}
	id := body["id"].(string)
	if !uuidPattern.MatchString(id) {
		t.Fatalf("id %q is not a UUID", id)
	}
	code, body = h.do(t, "POST", "/jobs", `{"kind":"echo","payload":{"x":1}}`, "Idempotency-Key", "order-17")
	if code != http.StatusAccepted || body["id"] != id || body["idempotent_replay"] != true {
		t.Fatalf("retry: %d %v", code, body)
	}
	if len(h.store.jobs) != 1 {
		t.Fatalf("%d jobs stored, want 1", len(h.store.jobs))
	}
	// A queued job is submitted again on retry; the runtime answers the
	// repeated key as a duplicate.
	if len(h.submits) != 2 || h.submits[0] != id || h.submits[1] != id {
		t.Fatalf("submits %v", h.submits)
	}
	code, body = h.do(t, "POST", "/jobs", `{"kind":"echo","payload":{"x":2}}`, "Idempotency-Key", "order-17")
	if code != http.StatusConflict || body["error"] != msgKeyConflict {
		t.Fatalf("conflict: %d %v", code, body)
	}
	code, body = h.do(t, "GET", "/jobs/"+id, "")
	if code != http.StatusOK || body["kind"] != "echo" || body["state"] != "queued" {
		t.Fatalf("get: %d %v", code, body)
	}
}

func TestBadInput(t *testing.T) {
	h := newHarness(t)
	huge := `{"kind":"echo","payload":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	big := `{"kind":"echo","payload":"` + strings.Repeat("x", jobs.MaxPayloadBytes) + `"}`
	for _, tc := range []struct {
		method, path, body string
		headers            []string
		code               int
		msg                string
	}{
		{"POST", "/jobs", `{"kind":`, nil, 400, msgMalformed},
		{"POST", "/jobs", `[]`, nil, 400, msgMalformed},
		{"POST", "/jobs", `{"kind":"echo","extra":1}`, nil, 400, msgMalformed},
		{"POST", "/jobs", `{"kind":"echo"} {}`, nil, 400, msgMalformed},
		{"POST", "/jobs", `{"payload":1}`, nil, 400, msgKindRequired},
		{"POST", "/jobs", `{"kind":"resize"}`, nil, 400, `unknown job kind "resize"; expected one of [echo fail sleep]`},
		{"POST", "/jobs", `{"kind":"sleep","payload":{"ms":-5}}`, nil, 400, `invalid payload: sleep takes {"ms": <0..30000>}`},
		{"POST", "/jobs", huge, nil, 413, msgBodyTooLarge},
		{"POST", "/jobs", big, nil, 413, "payload too large: over 8192 bytes"},
		{"POST", "/jobs", `{"kind":"echo"}`, []string{"Idempotency-Key", "has space"}, 400, msgInvalidKey},
		{"POST", "/jobs", `{"kind":"echo"}`, []string{"Idempotency-Key", ""}, 400, msgInvalidKey},
		{"POST", "/jobs", `{"kind":"echo"}`, []string{"Idempotency-Key", strings.Repeat("k", 129)}, 400, msgInvalidKey},
		{"GET", "/jobs/not-a-uuid", "", nil, 400, msgInvalidID},
		{"GET", "/jobs/00000000-0000-4000-8000-000000000001", "", nil, 404, msgNotFound},
		{"GET", "/jobs?state=done", "", nil, 400, msgInvalidState},
		{"GET", "/jobs?limit=0", "", nil, 400, msgInvalidLimit},
		{"GET", "/jobs?limit=101", "", nil, 400, msgInvalidLimit},
		{"GET", "/jobs?limit=ten", "", nil, 400, msgInvalidLimit},
	} {
		code, body := h.do(t, tc.method, tc.path, tc.body, tc.headers...)
		if code != tc.code || body["error"] != tc.msg {
			t.Errorf("%s %s %.40q: %d %v; want %d %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.msg)
		}
	}
	if len(h.store.jobs) != 0 || len(h.submits) != 0 {
		t.Fatalf("bad input stored %d jobs and submitted %d", len(h.store.jobs), len(h.submits))
	}
}

func TestListIsBounded(t *testing.T) {
	h := newHarness(t)
	for range 3 {
		h.do(t, "POST", "/jobs", `{"kind":"echo"}`)
	}
	code, body := h.do(t, "GET", "/jobs?state=queued&limit=2", "")
	if code != 200 || len(body["jobs"].([]any)) != 2 || body["limit"] != float64(2) || body["state"] != "queued" {
		t.Fatalf("list: %d %v", code, body)
	}
	code, body = h.do(t, "GET", "/jobs?state=failed", "")
	if code != 200 || len(body["jobs"].([]any)) != 0 || body["limit"] != float64(jobs.DefaultListLimit) {
		t.Fatalf("empty list: %d %v", code, body)
	}
}

func TestClusterRefusal(t *testing.T) {
	h := newHarness(t)
	h.outcome = Submission{Outcome: mesh.OutcomeRejected, Reason: "replica_required_unavailable"}
	code, body := h.do(t, "POST", "/jobs", `{"kind":"echo"}`)
	if code != 503 || body["error"] != msgClusterRefused+": replica_required_unavailable" || body["id"] == "" {
		t.Fatalf("rejected: %d %v", code, body)
	}
	if h.store.refused[body["id"].(string)] != "replica_required_unavailable" {
		t.Fatalf("refusal not recorded: %v", h.store.refused)
	}
	h.subErr = errors.New("submit x: not stored")
	code, body = h.do(t, "POST", "/jobs", `{"kind":"echo"}`)
	if code != 503 || body["error"] != msgClusterRefused+": unavailable" {
		t.Fatalf("submit error: %d %v", code, body)
	}
}

// TestDriverErrorsNeverReachClients: a storage failure whose text carries
// the connection string is answered 500 "internal error", and the log line
// is redacted.
func TestDriverErrorsNeverReachClients(t *testing.T) {
	h := newHarness(t)
	h.store.failWith = fmt.Errorf("dial %s: connection refused", secretURL)
	for _, req := range [][2]string{{"POST", "/jobs"}, {"GET", "/jobs"}, {"GET", "/jobs/00000000-0000-4000-8000-000000000001"}} {
		code, body := h.do(t, req[0], req[1], `{"kind":"echo"}`)
		if code != 500 || body["error"] != msgInternal {
			t.Errorf("%s %s: %d %v", req[0], req[1], code, body)
		}
	}
	code, body := h.do(t, "GET", "/health", "")
	if code != 503 || body["status"] != "degraded" || body["error"] != msgDatabaseDown {
		t.Errorf("health: %d %v", code, body)
	}
	if strings.Contains(h.logs.String(), "s3cret-pw") || !strings.Contains(h.logs.String(), "[redacted]") {
		t.Fatalf("logs not redacted:\n%s", h.logs.String())
	}
	h.store.failWith = fmt.Errorf("%w: relation jobs does not exist", jobs.ErrNotMigrated)
	if code, body := h.do(t, "GET", "/jobs", ""); code != 503 || body["error"] != msgNotMigrated {
		t.Errorf("not migrated: %d %v", code, body)
	}
}

func TestHealthReportsSignalsAndRuntime(t *testing.T) {
	h := newHarness(t)
	code, body := h.do(t, "GET", "/health", "")
	if code != 200 || body["status"] != "ok" || body["db_backend"] != "postgres" || body["clustered_handler"] != "work.RunJob" ||
		body["node"] != "a@127.0.0.1:1" || body["cluster_role"] != "primary" || body["promotion_epoch"] != float64(2) ||
		body["restart_count"] != float64(3) {
		t.Fatalf("health: %d %v", code, body)
	}
	for _, k := range []string{"recovered_jobs", "last_recovery_at", "last_recovery_job_id", "last_exit_reason", "fenced_writes_refused"} {
		if _, ok := body[k]; !ok {
			t.Errorf("health lacks %s", k)
		}
	}
}
