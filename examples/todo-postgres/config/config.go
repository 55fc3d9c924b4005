// Package config reads the service's settings from the environment, in one
// place, and validates them into a Config. The MESH_* variables are read by
// the Mesh runtime itself (mesh.StartFromEnv), not here.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by FromEnv.
const (
	EnvDatabaseURL     = "DATABASE_URL"
	EnvPort            = "PORT"
	EnvRateLimitWindow = "TODO_RATE_LIMIT_WINDOW_SECONDS"
	EnvRateLimitMax    = "TODO_RATE_LIMIT_MAX_REQUESTS"
)

// Defaults used when a variable is unset or empty.
const (
	DefaultPort                   = 8080
	DefaultRateLimitWindowSeconds = 60
	DefaultRateLimitMaxRequests   = 5
)

// Upper bounds, so that a typo cannot overflow a port or a duration.
const (
	maxPort          = 65535
	maxWindowSeconds = 365 * 24 * 60 * 60
)

// Config is the validated configuration of the service.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string. It prints as
	// [redacted]; only Value returns the secret.
	DatabaseURL DatabaseURL
	// Port is the HTTP listen port.
	Port int
	// RateLimitWindowSeconds is the length of one write-limiter window.
	RateLimitWindowSeconds int
	// RateLimitMaxRequests is the number of writes allowed per window.
	RateLimitMaxRequests int
}

// RateLimitWindow returns RateLimitWindowSeconds as a duration.
func (c Config) RateLimitWindow() time.Duration {
	return time.Duration(c.RateLimitWindowSeconds) * time.Second
}

// FromEnv builds a Config from lookup (os.LookupEnv in main). DATABASE_URL is
// required; unset or empty numeric variables take their defaults. Every
// problem is reported, one per line, in the order DATABASE_URL, PORT,
// TODO_RATE_LIMIT_WINDOW_SECONDS, TODO_RATE_LIMIT_MAX_REQUESTS.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	var cfg Config
	raw, _ := lookup(EnvDatabaseURL)
	cfg.DatabaseURL = DatabaseURL(strings.TrimSpace(raw))
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("Missing required environment variable DATABASE_URL"))
	}
	var err error
	if cfg.Port, err = positiveInt(lookup, EnvPort, DefaultPort, maxPort); err != nil {
		errs = append(errs, err)
	}
	if cfg.RateLimitWindowSeconds, err = positiveInt(lookup, EnvRateLimitWindow, DefaultRateLimitWindowSeconds, maxWindowSeconds); err != nil {
		errs = append(errs, err)
	}
	if cfg.RateLimitMaxRequests, err = positiveInt(lookup, EnvRateLimitMax, DefaultRateLimitMaxRequests, 0); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// positiveInt reads name as an integer greater than zero and, when limit is
// positive, no greater than limit. Unset or blank means def.
func positiveInt(lookup func(string) (string, bool), name string, def, limit int) (int, error) {
	raw, _ := lookup(name)
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("Invalid %s: expected a positive integer", name)
	}
	if limit > 0 && n > limit {
		return 0, fmt.Errorf("Invalid %s: expected a positive integer no greater than %d", name, limit)
	}
	return n, nil
}

// redacted is what a DatabaseURL prints as.
const redacted = "[redacted]"

// DatabaseURL is a PostgreSQL connection string. It holds a password, so it
// prints as [redacted] through fmt, log/slog and encoders; Value returns the
// real string for the driver.
type DatabaseURL string

// Value returns the connection string itself. Pass it to the driver only.
func (u DatabaseURL) Value() string { return string(u) }

// String returns "[redacted]".
func (DatabaseURL) String() string { return redacted }

// GoString returns "[redacted]".
func (DatabaseURL) GoString() string { return redacted }

// LogValue returns "[redacted]".
func (DatabaseURL) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "[redacted]".
func (DatabaseURL) MarshalText() ([]byte, error) { return []byte(redacted), nil }

var keywordPassword = regexp.MustCompile(`password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)`)

// Redact returns s with the connection string and its password replaced by
// [redacted]. Use it on driver errors before they are logged.
func (u DatabaseURL) Redact(s string) string {
	raw := string(u)
	if raw == "" {
		return s
	}
	s = strings.ReplaceAll(s, raw, redacted)
	if parsed, err := url.Parse(raw); err == nil && parsed.User != nil {
		if pw, ok := parsed.User.Password(); ok && pw != "" {
			s = strings.ReplaceAll(s, pw, redacted)
		}
	}
	for _, m := range keywordPassword.FindAllStringSubmatch(raw, -1) {
		pw := strings.Trim(m[1], "'")
		if pw != "" {
			s = strings.ReplaceAll(s, pw, redacted)
		}
	}
	return s
}
