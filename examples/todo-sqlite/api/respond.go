package api

import (
	"encoding/json"
	"net/http"
)

// errorBody is the body of every error response.
type errorBody struct {
	Error string `json:"error"`
}

// Error messages clients see. Storage errors never reach a response: they are
// logged and answered with msgInternal.
const (
	msgInvalidID     = "invalid todo id"
	msgNotFound      = "todo not found"
	msgTitleRequired = "title is required"
	msgRateLimited   = "rate limited"
	msgInternal      = "internal error"
)

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body) // a write error means the client went away
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}
