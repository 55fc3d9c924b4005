// Package config reads the backend's settings from the environment, in one
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
)

// Environment variables read by FromEnv.
const (
	EnvDatabaseURL = "DATABASE_URL"
	EnvPort        = "PORT"
)

// DefaultPort is the HTTP port when PORT is unset or empty.
const DefaultPort = 8080

const maxPort = 65535

// Config is the validated configuration of one backend process.
type Config struct {
	// DatabaseURL is the PostgreSQL connection string. It prints as
	// [redacted]; only Value returns the secret.
	DatabaseURL DatabaseURL
	// Port is the HTTP listen port.
	Port int
}

// FromEnv reads DATABASE_URL (required) and PORT through lookup and reports
// every problem at once, one per line of the error. No error message contains
// the value of DATABASE_URL.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	var cfg Config
	raw, _ := lookup(EnvDatabaseURL)
	cfg.DatabaseURL = DatabaseURL(strings.TrimSpace(raw))
	if cfg.DatabaseURL == "" {
		errs = append(errs, errors.New("Missing required environment variable DATABASE_URL"))
	}
	port, _ := lookup(EnvPort)
	port = strings.TrimSpace(port)
	cfg.Port = DefaultPort
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > maxPort {
			errs = append(errs, fmt.Errorf("Invalid %s: expected a port between 1 and %d", EnvPort, maxPort))
		}
		cfg.Port = n
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
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
