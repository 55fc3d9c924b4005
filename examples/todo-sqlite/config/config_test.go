package config

import (
	"strings"
	"testing"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		v, ok := env[key]
		return v, ok
	}
}

func TestFromEnvDefaults(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(nil))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := Config{DBPath: "todo.sqlite3", Port: 8080, RateLimitWindowSeconds: 60, RateLimitMaxRequests: 5}
	if cfg != want {
		t.Fatalf("FromEnv() = %+v, want %+v", cfg, want)
	}
}

func TestFromEnvReadsEveryVariable(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(map[string]string{
		"TODO_DB_PATH":                   "  /var/lib/todo/todo.sqlite3  ",
		"PORT":                           "9090",
		"TODO_RATE_LIMIT_WINDOW_SECONDS": "2",
		"TODO_RATE_LIMIT_MAX_REQUESTS":   " 7 ",
	}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := Config{DBPath: "/var/lib/todo/todo.sqlite3", Port: 9090, RateLimitWindowSeconds: 2, RateLimitMaxRequests: 7}
	if cfg != want {
		t.Fatalf("FromEnv() = %+v, want %+v", cfg, want)
	}
	if got := cfg.RateLimitWindow().String(); got != "2s" {
		t.Fatalf("RateLimitWindow() = %s, want 2s", got)
	}
}

func TestFromEnvEmptyNumbersTakeDefaults(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(map[string]string{
		"PORT":                           "",
		"TODO_RATE_LIMIT_WINDOW_SECONDS": " ",
		"TODO_RATE_LIMIT_MAX_REQUESTS":   "",
	}))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if cfg.Port != 8080 || cfg.RateLimitWindowSeconds != 60 || cfg.RateLimitMaxRequests != 5 {
		t.Fatalf("FromEnv() = %+v, want the defaults", cfg)
	}
}

func TestFromEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{
			name: "blank db path",
			env:  map[string]string{"TODO_DB_PATH": "   "},
			want: "Invalid TODO_DB_PATH: expected a non-empty path",
		},
		{
			name: "non-numeric port",
			env:  map[string]string{"PORT": "http"},
			want: "Invalid PORT: expected a positive integer",
		},
		{
			name: "zero port",
			env:  map[string]string{"PORT": "0"},
			want: "Invalid PORT: expected a positive integer",
		},
		{
			name: "port out of range",
			env:  map[string]string{"PORT": "70000"},
			want: "Invalid PORT: expected a positive integer no greater than 65535",
		},
		{
			name: "negative window",
			env:  map[string]string{"TODO_RATE_LIMIT_WINDOW_SECONDS": "-1"},
			want: "Invalid TODO_RATE_LIMIT_WINDOW_SECONDS: expected a positive integer",
		},
		{
			name: "fractional max",
			env:  map[string]string{"TODO_RATE_LIMIT_MAX_REQUESTS": "2.5"},
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
	_, err := FromEnv(lookupFrom(map[string]string{
		"TODO_DB_PATH":                   "",
		"PORT":                           "x",
		"TODO_RATE_LIMIT_WINDOW_SECONDS": "0",
		"TODO_RATE_LIMIT_MAX_REQUESTS":   "y",
	}))
	if err == nil {
		t.Fatal("FromEnv() succeeded, want an error")
	}
	want := []string{
		"Invalid TODO_DB_PATH: expected a non-empty path",
		"Invalid PORT: expected a positive integer",
		"Invalid TODO_RATE_LIMIT_WINDOW_SECONDS: expected a positive integer",
		"Invalid TODO_RATE_LIMIT_MAX_REQUESTS: expected a positive integer",
	}
	if got := strings.Split(err.Error(), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("FromEnv() problems = %q, want %q", got, want)
	}
}
