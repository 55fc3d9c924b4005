package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"meshgo.dev/mesh"

	"todo-postgres/storage"
	"todo-postgres/work"
)

// clearKeyPrefix starts the request key of every clear-completed run.
const clearKeyPrefix = "clear-completed::"

// clearWait bounds how long POST /todos/clear-completed waits for the work's
// result; the work goes on after a timeout, and a retry with the same
// Idempotency-Key then reads its report.
const clearWait = 10 * time.Second

// maxClearKey bounds the length of an Idempotency-Key.
const maxClearKey = 128

// Messages of POST /todos/clear-completed.
const (
	msgInvalidKey  = "invalid Idempotency-Key"
	msgKeyConflict = "Idempotency-Key is in use by another clear-completed request"
	msgStillRuns   = "clear-completed is still running; retry with the same Idempotency-Key"
)

// clearJSON is the response of POST /todos/clear-completed.
type clearJSON struct {
	RequestKey string `json:"request_key"`
	Outcome    string `json:"outcome"`
	Before     string `json:"before"`
	Deleted    int64  `json:"deleted"`
	Remaining  int64  `json:"remaining"`
}

// ClearCompleted answers POST /todos/clear-completed: it deletes the
// completed todos created up to now, as the typed declared work
// work.ClearCompleted, and answers 200 with its report. The work runs once
// per request key, clear-completed::<Idempotency-Key> (a random key when the
// client sends none): a retry with the same Idempotency-Key answers the first
// run's report, outcome "duplicate", without deleting anything again. The
// request body is ignored.
//
// In a pair the work runs on the node the runtime places its request key on,
// and this node answers once the report has reached it.
func (t *Todos) ClearCompleted(w http.ResponseWriter, r *http.Request) {
	key, ok := clearKey(r.Header.Get(mesh.HeaderIdempotencyKey))
	if !ok {
		writeError(w, http.StatusBadRequest, msgInvalidKey)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clearWait)
	defer cancel()

	// A retry reads the stored report, whatever time it is now. A nil node
	// is the node serving the request.
	h, err := mesh.Lookup[work.ClearReport](ctx, nil, work.Clear, key)
	if mesh.RefusalReason(err) == "request_key_not_found" {
		h, err = mesh.SubmitWork(ctx, nil, work.ClearCompleted, key, work.ClearInput{Before: time.Now().UTC()})
	}
	if err != nil {
		t.refuse(w, err)
		return
	}
	if h.Outcome() == mesh.OutcomeConflict {
		writeError(w, http.StatusConflict, msgKeyConflict)
		return
	}
	w.Header().Set(mesh.HeaderRequestKey, h.RequestKey())
	report, err := h.Result(ctx)
	if err != nil {
		t.refuse(w, err)
		return
	}
	writeJSON(w, http.StatusOK, clearJSON{
		RequestKey: h.RequestKey(), Outcome: h.Outcome(),
		Before:  report.Before.UTC().Format(time.RFC3339Nano),
		Deleted: report.Deleted, Remaining: report.Remaining,
	})
}

// clearKey returns the request key for an Idempotency-Key header value, or
// a fresh random one when it is empty. A key is 1 to 128 letters, digits and
// . _ - characters.
func clearKey(header string) (string, bool) {
	if header == "" {
		b := make([]byte, 16)
		rand.Read(b)
		return clearKeyPrefix + hex.EncodeToString(b), true
	}
	if len(header) > maxClearKey {
		return "", false
	}
	for _, c := range header {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.ContainsRune("._-", c)) {
			return "", false
		}
	}
	return clearKeyPrefix + header, true
}

// refuse answers an error of the work: the runtime's refusal reason (503),
// a timeout (503, retry with the key), an unmigrated schema (503), anything
// else a logged 500.
func (t *Todos) refuse(w http.ResponseWriter, err error) {
	var failed *mesh.WorkError
	switch {
	case errors.As(err, &failed):
		t.log.Printf("work error op=clear-completed: %s", strings.Join(strings.Fields(err.Error()), " "))
		if strings.Contains(err.Error(), storage.ErrNotMigrated.Error()) {
			writeError(w, http.StatusServiceUnavailable, msgNotMigrated)
			return
		}
		if strings.HasPrefix(failed.Reason, "handler_") { // the work's own error or panic
			writeError(w, http.StatusInternalServerError, msgInternal)
			return
		}
		writeError(w, http.StatusServiceUnavailable, failed.Reason) // refused by the runtime
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusServiceUnavailable, msgStillRuns)
	case mesh.RefusalReason(err) != "":
		writeError(w, http.StatusServiceUnavailable, mesh.RefusalReason(err))
	default:
		t.log.Printf("work error op=clear-completed: %s", strings.Join(strings.Fields(err.Error()), " "))
		writeError(w, http.StatusInternalServerError, msgInternal)
	}
}
