// Package jobs owns the backend's jobs: the kinds a client may submit, their
// validation, how an attempt runs one, and the jobs table in PostgreSQL with
// every attempt's write fenced by its promotion epoch. It knows nothing of
// HTTP and nothing of the Mesh runtime beyond the Attempt it is handed.
package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Limits of a submitted job.
const (
	// MaxPayloadBytes bounds the encoded payload of one job.
	MaxPayloadBytes = 8 << 10
	// MaxSleep bounds the duration of a sleep job.
	MaxSleep = 30 * time.Second
)

// Job kinds.
const (
	KindEcho  = "echo"  // result {"echo": <payload>}
	KindSleep = "sleep" // payload {"ms": N}, 0 <= N <= 30000; result {"slept_ms": N}
	KindFail  = "fail"  // payload {"message": "..."}; the job ends failed with that message
)

// Kinds lists the accepted kinds, sorted.
var Kinds = []string{KindEcho, KindFail, KindSleep}

// Validation errors, matched with errors.Is. Their messages are safe to
// show to clients.
var (
	ErrUnknownKind     = errors.New("unknown job kind")
	ErrPayloadTooLarge = errors.New("payload too large")
	ErrInvalidPayload  = errors.New("invalid payload")
)

// sleepPayload is the payload of a sleep job.
type sleepPayload struct {
	MS *int `json:"ms"`
}

// failPayload is the payload of a fail job.
type failPayload struct {
	Message string `json:"message"`
}

// Validate checks kind and payload before a job is stored. A nil or empty
// payload counts as JSON null. The returned payload is the compacted JSON the
// job is stored with.
func Validate(kind string, payload json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(payload)) == 0 {
		payload = json.RawMessage("null")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, payload); err != nil {
		return nil, fmt.Errorf("%w: not JSON", ErrInvalidPayload)
	}
	if buf.Len() > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrPayloadTooLarge, MaxPayloadBytes)
	}
	compact := json.RawMessage(buf.Bytes())
	switch kind {
	case KindEcho:
	case KindSleep:
		if _, err := sleepFor(compact); err != nil {
			return nil, err
		}
	case KindFail:
		var p failPayload
		if err := strictDecode(compact, &p); err != nil || p.Message == "" {
			return nil, fmt.Errorf(`%w: fail takes {"message": "<non-empty text>"}`, ErrInvalidPayload)
		}
	default:
		return nil, fmt.Errorf("%w %q; expected one of %v", ErrUnknownKind, kind, Kinds)
	}
	return compact, nil
}

func sleepFor(payload json.RawMessage) (time.Duration, error) {
	var p sleepPayload
	if err := strictDecode(payload, &p); err != nil || p.MS == nil || *p.MS < 0 || time.Duration(*p.MS)*time.Millisecond > MaxSleep {
		return 0, fmt.Errorf(`%w: sleep takes {"ms": <0..%d>}`, ErrInvalidPayload, MaxSleep.Milliseconds())
	}
	return time.Duration(*p.MS) * time.Millisecond, nil
}

func strictDecode(payload json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// execute runs a stored job's kind once and returns its result, or the error
// that fails the job. It returns ctx's error when ctx ends first.
func execute(ctx context.Context, kind string, payload json.RawMessage) (json.RawMessage, error) {
	switch kind {
	case KindEcho:
		return json.Marshal(map[string]json.RawMessage{"echo": payload})
	case KindSleep:
		d, err := sleepFor(payload)
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return json.Marshal(map[string]int64{"slept_ms": d.Milliseconds()})
	case KindFail:
		var p failPayload
		if err := strictDecode(payload, &p); err != nil {
			return nil, err
		}
		return nil, errors.New(p.Message)
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownKind, kind)
}
