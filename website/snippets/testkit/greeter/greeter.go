// Package greeter is the small service the test kit example tests: one
// clustered route, and a route that submits typed work and answers with its
// result.
package greeter

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"unicode/utf8"

	"meshgo.dev/mesh"
)

// #region service
// Greet answers GET /greet/{name}. Behind mesh.Clustered(2, ...) it runs on
// the placement owner of the request once the record is mirrored.
func Greet(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	fmt.Fprintf(w, "hello %s (epoch %d)\n", r.PathValue("name"), id.Epoch)
}

// Tally is the output of CountLetters, stored on its record.
type Tally struct {
	Word    string `json:"word"`
	Letters int    `json:"letters"`
}

// CountLetters is typed work: its input is the word to count. A tally is
// cheap to redo, so its record is not mirrored (count 1): it also runs on a
// standalone node, where count-2 work is refused for want of a replica.
func CountLetters(ctx context.Context, word string) (Tally, error) {
	return Tally{Word: word, Letters: utf8.RuneCountInString(word)}, nil
}

var _ = mesh.Work(CountLetters, mesh.ReplicationCount(1))

// Count answers POST /count/{word}: it submits CountLetters under the key
// count::<word> and writes the stored result, so counting a word again
// returns the first run's output without running the work.
func Count(w http.ResponseWriter, r *http.Request) {
	word := r.PathValue("word")
	// A nil node: the node serving this request.
	h, err := mesh.SubmitWork(r.Context(), nil, CountLetters, "count::"+word, word)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	tally, err := h.Result(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set(mesh.HeaderRequestKey, h.RequestKey())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(tally)
}

// Routes returns the service's handler.
func Routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /greet/{name}", mesh.Clustered(2, Greet))
	mux.HandleFunc("POST /count/{word}", Count)
	return mux
}

// #endregion service
