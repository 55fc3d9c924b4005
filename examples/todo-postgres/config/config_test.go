package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testURL = "postgres://todo:s3cret-pw@db.internal:5432/todo?sslmode=require"

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := env[key]
		return v, ok
	}
}

func TestFromEnvDefaults(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(map[string]string{"DATABASE_URL": testURL}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := Config{DatabaseURL: testURL, Port: 8080, RateLimitWindowSeconds: 60, RateLimitMaxRequests: 5}
	if cfg != want {
		t.Fatalf("FromEnv() = %+v, want %+v", cfg, want)
	}
	if cfg.DatabaseURL.Value() != testURL {
		t.Fatalf("DatabaseURL.Value() = %q, want the URL", cfg.DatabaseURL.Value())
	}
}

func TestFromEnvReadsEveryVariable(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(map[string]string{
		"DATABASE_URL":                   " " + testURL + " ",
		"PORT":                           "9090",
		"TODO_RATE_LIMIT_WINDOW_SECONDS": "2",
		"TODO_RATE_LIMIT_MAX_REQUESTS":   "20",
	}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := Config{DatabaseURL: testURL, Port: 9090, RateLimitWindowSeconds: 2, RateLimitMaxRequests: 20}
	if cfg != want {
		t.Fatalf("FromEnv() = %+v, want %+v", cfg, want)
	}
	if got := cfg.RateLimitWindow().String(); got != "2s" {
		t.Fatalf("RateLimitWindow() = %s, want 2s", got)
	}
}

func TestFromEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "missing database url",
			env:  map[string]string{},
			want: "Missing required environment variable DATABASE_URL",
		},
		{
			name: "blank database url",
			env:  map[string]string{"DATABASE_URL": "  "},
			want: "Missing required environment variable DATABASE_URL",
		},
		{
			name: "non-numeric port",
			env:  map[string]string{"DATABASE_URL": testURL, "PORT": "eighty"},
			want: "Invalid PORT: expected a positive integer",
		},
		{
			name: "port out of range",
			env:  map[string]string{"DATABASE_URL": testURL, "PORT": "65536"},
			want: "Invalid PORT: expected a positive integer no greater than 65535",
		},
		{
			name: "zero window",
			env:  map[string]string{"DATABASE_URL": testURL, "TODO_RATE_LIMIT_WINDOW_SECONDS": "0"},
			want: "Invalid TODO_RATE_LIMIT_WINDOW_SECONDS: expected a positive integer",
		},
		{
			name: "negative max",
			env:  map[string]string{"DATABASE_URL": testURL, "TODO_RATE_LIMIT_MAX_REQUESTS": "-3"},
			want: "Invalid TODO_RATE_LIMIT_MAX_REQUESTS: expected a positive integer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FromEnv(lookupFrom(tt.env))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("FromEnv() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFromEnvReportsEveryProblemInOrder(t *testing.T) {
	_, err := FromEnv(lookupFrom(map[string]string{"PORT": "x", "TODO_RATE_LIMIT_MAX_REQUESTS": "0"}))
	want := "Missing required environment variable DATABASE_URL\n" +
		"Invalid PORT: expected a positive integer\n" +
		"Invalid TODO_RATE_LIMIT_MAX_REQUESTS: expected a positive integer"
	if err == nil || err.Error() != want {
		t.Fatalf("FromEnv() error = %v, want %q", err, want)
	}
}

func TestDatabaseURLNeverPrints(t *testing.T) {
	cfg := Config{DatabaseURL: testURL, Port: 8080}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg, "url", cfg.DatabaseURL)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "url", cfg.DatabaseURL)
	encoded, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{
		fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg.DatabaseURL),
		string(encoded), logs.String(),
	} {
		if strings.Contains(out, "s3cret-pw") || !strings.Contains(out, "[redacted]") {
			t.Errorf("output leaks the URL or lacks [redacted]: %s", out)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		url, in, want string
	}{
		{testURL, "dial " + testURL + ": refused", "dial [redacted]: refused"},
		{testURL, "password s3cret-pw rejected", "password [redacted] rejected"},
		{"host=db user=todo password='p w' dbname=todo", "auth p w failed", "auth [redacted] failed"},
		{"host=db user=todo password=hunter2", "bad hunter2", "bad [redacted]"},
		{"postgres://db/todo", "no password here", "no password here"},
	}
	for _, tt := range tests {
		if got := DatabaseURL(tt.url).Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
