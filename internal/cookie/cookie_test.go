package cookie

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name, cookie, want string // want "" means accepted
	}{
		{"random", "Zq3v8Rk1-Lw9Tb2Np5Xc7Hm4Jd6Fs0Ga", ""},
		{"generated", New(), ""},
		{"one character", "c", "at least 32 characters"},
		{"31 characters", strings.Repeat("ab3D", 8)[:31], "at least 32 characters"},
		{"change-me", "change-me-in-production-0123456789abcdef", "known placeholder"},
		{"CHANGE_ME", "CHANGE_ME_please_0123456789abcdefghij", "known placeholder"},
		{"dev cookie", "local-dev-cookie-0123456789abcdefghijkl", "known placeholder"},
		{"repeated", strings.Repeat("ab", 20), "different characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("MESH_CLUSTER_COOKIE", tt.cookie)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check refused a good cookie: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted %q", tt.cookie)
			}
			msg := err.Error()
			for _, w := range []string{"Invalid MESH_CLUSTER_COOKIE", tt.want, "meshc cluster cookie"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
			if len(tt.cookie) > 4 && strings.Contains(msg, tt.cookie) {
				t.Errorf("error %q contains the cookie", msg)
			}
			if !errors.Is(err, ErrWeak) {
				t.Errorf("error does not match ErrWeak")
			}
		})
	}
}

func TestNewIsRandomAndStrong(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := New()
		if len(c) != 43 {
			t.Fatalf("New() is %d characters, want 43 (32 bytes in base64url)", len(c))
		}
		if err := Check("x", c); err != nil {
			t.Fatalf("New() made a cookie Check refuses: %v", err)
		}
		if strings.ContainsAny(c, "+/= \n") {
			t.Fatalf("New() %q is not base64url without padding", c)
		}
		if seen[c] {
			t.Fatalf("New() repeated a cookie")
		}
		seen[c] = true
	}
}

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	good := New()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("private file", func(t *testing.T) {
		got, err := ReadFile("MESH_CLUSTER_COOKIE_FILE", write("ok", "  "+good+"\n", 0o600))
		if err != nil || got != good {
			t.Fatalf("ReadFile = %q, %v; want the trimmed cookie", got, err)
		}
	})
	refused := []struct {
		name, path, want string
	}{
		{"group readable", write("group", good, 0o640), "chmod 600"},
		{"world readable", write("world", good, 0o604), "chmod 600"},
		{"empty", write("empty", " \n", 0o600), "is empty"},
		{"too large", write("large", strings.Repeat("a", 5000), 0o600), "larger than"},
		{"missing", filepath.Join(dir, "missing"), "no such file"},
		{"directory", dir, "not a regular file"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFile("MESH_CLUSTER_COOKIE_FILE", tt.path)
			if err == nil {
				t.Fatalf("ReadFile accepted it: %q", got)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "MESH_CLUSTER_COOKIE_FILE: ") {
				t.Fatalf("error %q: want prefix MESH_CLUSTER_COOKIE_FILE and %q", err, tt.want)
			}
			if strings.Contains(err.Error(), good) {
				t.Fatalf("error contains the cookie")
			}
		})
	}
}
