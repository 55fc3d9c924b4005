// Package require is what the server test kits (meshtest/etcdtest,
// meshtest/pgtest) do when the server a test needs is missing: skip the
// test, or fail it when the environment asks for the server (CI sets
// MESH_REQUIRE_ETCD=1 and MESH_REQUIRE_POSTGRES=1). It imports only the
// standard library.
package require

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Unavailable ends t because server, needed through kit, is unavailable
// for err: it fails t when envVar is "1" or fatal is set (a misconfiguration
// that must never pass as a skip), and skips it otherwise, naming envVar.
func Unavailable(t testing.TB, kit, server, envVar string, err error, fatal bool) {
	t.Helper()
	if fatal || os.Getenv(envVar) == "1" {
		t.Fatalf("%s: %s unavailable: %v", kit, server, err)
	}
	t.Skipf("%s: %s unavailable, skipping: %v (set %s=1 to fail instead)", kit, server, err, envVar)
}

// Recorder is a testing.TB that records the first Fatalf or Skipf, as
// "fatal: <message>" or "skip: <message>", instead of ending the test.
type Recorder struct {
	testing.TB
	First string
}

// Helper does nothing: the recorder reports no lines.
func (r *Recorder) Helper() {}

// Fatalf records the message if it is the first.
func (r *Recorder) Fatalf(format string, args ...any) {
	if r.First == "" {
		r.First = "fatal: " + fmt.Sprintf(format, args...)
	}
}

// Skipf records the message if it is the first.
func (r *Recorder) Skipf(format string, args ...any) {
	if r.First == "" {
		r.First = "skip: " + fmt.Sprintf(format, args...)
	}
}

// CheckRequired fails t unless unavailable, given err, fails the test under
// envVar=1 and skips it with envVar unset.
func CheckRequired(t *testing.T, envVar string, unavailable func(testing.TB, error), err error) {
	t.Helper()
	for _, tt := range []struct{ require, want string }{{"1", "fatal: "}, {"", "skip: "}} {
		t.Setenv(envVar, tt.require)
		r := &Recorder{TB: t}
		unavailable(r, err)
		if !strings.HasPrefix(r.First, tt.want) {
			t.Fatalf("%s=%q: got %q, want a %s", envVar, tt.require, r.First, tt.want)
		}
	}
}
