package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	big := `"` + strings.Repeat("x", MaxPayloadBytes) + `"`
	for _, tc := range []struct {
		kind, payload string
		want          error
		stored        string
	}{
		{KindEcho, `{"a": 1}`, nil, `{"a":1}`},
		{KindEcho, ``, nil, `null`},
		{KindSleep, `{"ms": 250}`, nil, `{"ms":250}`},
		{KindSleep, `{"ms": 0}`, nil, `{"ms":0}`},
		{KindSleep, `{}`, ErrInvalidPayload, ""},
		{KindSleep, `{"ms": -1}`, ErrInvalidPayload, ""},
		{KindSleep, `{"ms": 30001}`, ErrInvalidPayload, ""},
		{KindSleep, `{"ms": 5, "x": 1}`, ErrInvalidPayload, ""},
		{KindFail, `{"message": "no"}`, nil, `{"message":"no"}`},
		{KindFail, `{"message": ""}`, ErrInvalidPayload, ""},
		{"resize", `1`, ErrUnknownKind, ""},
		{"", `1`, ErrUnknownKind, ""},
		{KindEcho, big, ErrPayloadTooLarge, ""},
		{KindEcho, `{`, ErrInvalidPayload, ""},
	} {
		got, err := Validate(tc.kind, json.RawMessage(tc.payload))
		if !errors.Is(err, tc.want) || (tc.want == nil && string(got) != tc.stored) {
			t.Errorf("Validate(%q, %.40q) = %s, %v; want %s, %v", tc.kind, tc.payload, got, err, tc.stored, tc.want)
		}
	}
}

func TestExecute(t *testing.T) {
	got, err := execute(t.Context(), KindEcho, json.RawMessage(`[1]`))
	if err != nil || string(got) != `{"echo":[1]}` {
		t.Fatalf("echo: %s %v", got, err)
	}
	got, err = execute(t.Context(), KindSleep, json.RawMessage(`{"ms":5}`))
	if err != nil || string(got) != `{"slept_ms":5}` {
		t.Fatalf("sleep: %s %v", got, err)
	}
	if _, err := execute(t.Context(), KindFail, json.RawMessage(`{"message":"bad input"}`)); err == nil || err.Error() != "bad input" {
		t.Fatalf("fail: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := execute(ctx, KindSleep, json.RawMessage(`{"ms":30000}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled sleep: %v", err)
	}
}
