// Package config reads the service's settings from the environment, in one
// place, and validates them into a Config.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Environment variables read by FromEnv.
const (
	EnvDBPath          = "TODO_DB_PATH"
	EnvPort            = "PORT"
	EnvRateLimitWindow = "TODO_RATE_LIMIT_WINDOW_SECONDS"
	EnvRateLimitMax    = "TODO_RATE_LIMIT_MAX_REQUESTS"
)

// Defaults used when a variable is unset.
const (
	DefaultDBPath                 = "todo.sqlite3"
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
	// DBPath is the SQLite database file, relative to the working directory
	// unless absolute. The file is created when missing.
	DBPath string
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

// FromEnv builds a Config from lookup (os.LookupEnv in main). Unset or empty
// PORT and limiter variables take their defaults; an unset TODO_DB_PATH takes
// its default, while one set to a blank value is an error. Every problem is
// reported, one per line, in the order TODO_DB_PATH, PORT,
// TODO_RATE_LIMIT_WINDOW_SECONDS, TODO_RATE_LIMIT_MAX_REQUESTS.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var errs []error
	cfg := Config{DBPath: DefaultDBPath}
	if raw, ok := lookup(EnvDBPath); ok {
		cfg.DBPath = strings.TrimSpace(raw)
		if cfg.DBPath == "" {
			errs = append(errs, errors.New("Invalid TODO_DB_PATH: expected a non-empty path"))
		}
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
