// Command idempotent-client retries a request to a clustered route with an
// Idempotency-Key, so that the retry is recognised as the same request.
package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"
)

// #region client
// post sends body to url under one idempotency key and retries when no
// response arrived: the request may or may not have reached the service, and
// the key makes that safe. Mesh recognises a repeat with the same body as a
// duplicate of the stored record and does not run the handler again; a
// different body under the same key is refused with 409 Conflict.
func post(client *http.Client, url string, body []byte) (*http.Response, error) {
	key := newKey()
	var lastErr error
	for attempt := range 4 {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := client.Do(req)
		if err == nil {
			// Includes a 503 {"error":"<reason>"} refusal from the runtime:
			// the refusal is stored under this key, so a retry with the same
			// key would get the same answer. Retry with a new key instead.
			return resp, nil
		}
		lastErr = err
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return nil, fmt.Errorf("post %s with Idempotency-Key %s: %w", url, key, lastErr)
}

// #endregion client

func newKey() string {
	var b [16]byte
	rand.Read(b[:])
	return "client-" + hex.EncodeToString(b[:])
}

func main() {
	url := "http://127.0.0.1:8080/payments"
	if len(os.Args) > 1 {
		url = os.Args[1]
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := post(client, url, []byte(`{"amount":42}`))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.Status, resp.Header.Get("X-Mesh-Continuity-Request-Key"))
}
