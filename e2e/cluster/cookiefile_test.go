package cluster_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/meshtest"
)

// TestCookieFileModes starts a real node and runs meshc with the cookie in a
// file: a file other users can read (0644) is refused by both with the
// documented message (meshc exits 2), a private one (0600) works, and the
// cookie shows up in no log line and no output.
func TestCookieFileModes(t *testing.T) {
	h := newHarness(t)
	shared := filepath.Join(h.dir, "cookie-shared")
	private := filepath.Join(h.dir, "cookie-private")
	for path, mode := range map[string]os.FileMode{shared: 0o644, private: 0o600} {
		if err := os.WriteFile(path, []byte(cookie+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	fileEnv := func(path string) []string {
		_, env := h.nodeEnv("primary", "127.0.0.1", "primary")
		out := []string{"MESH_CLUSTER_COOKIE_FILE=" + path}
		for _, kv := range env {
			if !strings.HasPrefix(kv, "MESH_CLUSTER_COOKIE=") {
				out = append(out, kv)
			}
		}
		return out
	}

	refused := meshtest.StartProcess(t, "primary-shared-cookie", h.app, fileEnv(shared), "")
	code, err := refused.Wait(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := "Invalid MESH_CLUSTER_COOKIE_FILE: " + shared + " is readable or writable by other users (mode 0644)"
	if code == 0 || !strings.Contains(refused.Log(), want) {
		t.Fatalf("node with a 0644 cookie file: exit %d, log:\n%s", code, refused.Log())
	}

	name, _ := h.nodeEnv("primary", "127.0.0.1", "primary")
	n := &node{name: name, env: fileEnv(private)}
	n.proc = meshtest.StartProcess(t, "primary", h.app, n.env, "")
	h.waitReady(n)

	run := func(args ...string) (string, string, int) {
		// No MESH_CLUSTER_COOKIE in meshc's environment: the file is the
		// only source.
		cmd := []string{"cluster", "status", name, "--json"}
		return h.meshcEnv([]string{"HOME=" + h.dir}, append(cmd, args...)...)
	}
	if out, errs, code := run("--cookie-file", private); code != 0 || !strings.Contains(out, `"local_node": "`+name+`"`) {
		t.Fatalf("meshc with a 0600 cookie file: exit %d\n%s%s", code, out, errs)
	}
	out, errs, code := run("--cookie-file", shared)
	if code != 2 || out != "" || !strings.Contains(errs, "error: meshc cluster: --cookie-file: "+shared+" is readable or writable by other users (mode 0644); run `chmod 600 "+shared+"`") {
		t.Fatalf("meshc with a 0644 cookie file: exit %d\nstdout %q\nstderr %q", code, out, errs)
	}
	for _, p := range []*meshtest.Process{refused, n.proc} {
		if strings.Contains(p.Log(), cookie) {
			t.Fatalf("a node logged the cookie: %s", p.LogPath())
		}
	}
}
