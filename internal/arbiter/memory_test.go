package arbiter

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTimingValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		t    Timing
		want []string // substrings of the error, none means valid
	}{
		{"default", DefaultTiming(), nil},
		{"zero", Timing{}, []string{"TTL must be positive", "Renew must be positive", "Margin must be positive"}},
		{"margin not below ttl", Timing{TTL: time.Second, Renew: 100 * time.Millisecond, Margin: time.Second}, []string{"Margin 1s must be less than TTL 1s"}},
		{"one renewal only", Timing{TTL: time.Second, Renew: 400 * time.Millisecond, Margin: 300 * time.Millisecond}, []string{"Renew 400ms must be at most half of TTL − Margin (700ms)"}},
		{"two renewals exactly", Timing{TTL: time.Second, Renew: 350 * time.Millisecond, Margin: 300 * time.Millisecond}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.t.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// The deadline is exactly the request start + TTL − Margin, and the store's
// expiry exactly start + TTL: with one clock there is nothing else to allow
// for.
func TestMemoryDeadlineArithmetic(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(DefaultTiming(), func() time.Time { return now })
	l, err := m.Acquire(context.Background(), "a@h:1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(DefaultTTL - DefaultMargin); !l.Deadline.Equal(want) {
		t.Fatalf("deadline %v, want %v", l.Deadline, want)
	}
	if !l.Valid(now) || l.Remaining(now) != DefaultTTL-DefaultMargin {
		t.Fatalf("lease not valid for TTL − Margin at its start: %v", l.Remaining(now))
	}
	now = now.Add(DefaultTTL - DefaultMargin)
	if l.Valid(now) {
		t.Fatal("lease still valid at its deadline")
	}
	st, _ := m.Observe(context.Background())
	if st.Remaining != DefaultMargin || !st.Held() {
		t.Fatalf("store has %v left at the holder's deadline, want the margin %v", st.Remaining, DefaultMargin)
	}
	now = now.Add(DefaultMargin)
	if st, _ := m.Observe(context.Background()); st.Held() {
		t.Fatalf("store lease still held at its expiry: %+v", st)
	}
	if (Lease{}).Valid(now) {
		t.Fatal("the zero Lease is valid")
	}
}

func TestConflictAndUnavailableErrors(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemory(DefaultTiming(), func() time.Time { return now })
	if _, err := m.Acquire(context.Background(), "a@h:1", 6); err != nil {
		t.Fatal(err)
	}
	_, err := m.Acquire(context.Background(), "b@h:2", 7)
	if got, want := err.Error(), "arbiter lease held by another node: held by a@h:1 at epoch 7 for another 2s"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	m.SetAvailable(false)
	_, err = m.Observe(context.Background())
	if !errors.Is(err, ErrUnavailable) || err.Error() != "arbiter unavailable: observe: in-memory store set unavailable" {
		t.Fatalf("got %v", err)
	}
	m.SetAvailable(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Observe(ctx); !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: %v, want ErrUnavailable and context.Canceled", err)
	}
	if _, err := m.Acquire(context.Background(), "", 0); err == nil {
		t.Fatal("empty node name accepted")
	}
}
