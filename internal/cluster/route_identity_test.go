package cluster

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

// IdentityThing answers with the identity its context carries.
func IdentityThing(w http.ResponseWriter, r *http.Request) {
	id, ok := IdentityFrom(r.Context())
	if !ok || NodeFor(r.Context()) == nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Key", id.RequestKey)
	w.Header().Set("X-Attempt", id.AttemptID)
	_, _ = w.Write([]byte("ok\n"))
}

var routeIdentity1 = Clustered(1, IdentityThing)

// A count-1 route's handler sees the identity of the record's current
// attempt, and the response names the same key.
func TestRouteHandlerSeesRecordIdentity(t *testing.T) {
	n := standalone(t, Config{})
	h := n.For(routeIdentity1)
	seen := map[string]bool{}
	for range 50 {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/id", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		key := w.Header().Get("X-Key")
		if key == "" || seen[key] {
			t.Fatalf("handler saw key %q (seen before: %v)", key, seen[key])
		}
		seen[key] = true
		rec, ok := n.reg.Get(key)
		if !ok || rec.Phase != continuity.PhaseCompleted {
			t.Fatalf("record of %q: %+v, %v", key, rec, ok)
		}
		if got, want := w.Header().Get("X-Attempt"), continuity.FormatAttempt(rec.Attempt); got != want {
			t.Fatalf("handler saw attempt %q, record has %q", got, want)
		}
	}
}
