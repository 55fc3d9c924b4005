package config

import (
	"fmt"
	"strings"
	"testing"
)

func lookupFrom(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestFromEnv(t *testing.T) {
	cfg, err := FromEnv(lookupFrom(map[string]string{EnvDatabaseURL: " postgres://u:p@h/db "}))
	if err != nil || cfg.Port != DefaultPort || cfg.DatabaseURL.Value() != "postgres://u:p@h/db" {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = FromEnv(lookupFrom(map[string]string{EnvDatabaseURL: "postgres://h/db", EnvPort: "9090"}))
	if err != nil || cfg.Port != 9090 {
		t.Fatalf("port: %+v %v", cfg, err)
	}
	_, err = FromEnv(lookupFrom(map[string]string{EnvPort: "70000"}))
	want := "Missing required environment variable DATABASE_URL\nInvalid PORT: expected a port between 1 and 65535"
	if err == nil || err.Error() != want {
		t.Fatalf("errors: %v", err)
	}
}

func TestDatabaseURLNeverPrints(t *testing.T) {
	u := DatabaseURL("postgres://app:hunter2-secret@db/jobs")
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), fmt.Sprintf("%v", Config{DatabaseURL: u})} {
		if strings.Contains(s, "hunter2") {
			t.Fatalf("printed the secret: %s", s)
		}
	}
	if got := u.Redact("dial postgres://app:hunter2-secret@db/jobs failed (hunter2-secret)"); strings.Contains(got, "hunter2") {
		t.Fatalf("Redact left the secret: %s", got)
	}
}
