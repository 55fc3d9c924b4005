package authority

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestLoadMissing(t *testing.T) {
	s, ok, err := Load(filepath.Join(t.TempDir(), "nope", FileName))
	if err != nil || ok || s != (State{}) {
		t.Fatalf("Load(missing) = %+v, %v, %v; want zero, false, nil", s, ok, err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := Path(dir)
	for _, s := range []State{
		{Role: RolePrimary, Epoch: 0},
		{Role: RoleStandby, Epoch: 1},
		{Role: RolePrimary, Epoch: 1<<64 - 1},
	} {
		if err := Save(path, s); err != nil {
			t.Fatalf("Save(%+v): %v", s, err)
		}
		got, ok, err := Load(path)
		if err != nil || !ok || got != s {
			t.Fatalf("Load after Save(%+v) = %+v, %v, %v", s, got, ok, err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"version":1,"role":"primary","epoch":18446744073709551615}` + "\n"; string(data) != want {
		t.Errorf("file content = %q, want %q", data, want)
	}
}

func TestSavePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := Path(dir)
	if err := Save(path, State{Role: RoleStandby, Epoch: 2}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v, want 0600", perm)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o700 {
		t.Errorf("dir mode = %v, want 0700", perm)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("Save left extra files: %v", entries)
	}
}

func TestSaveRefusesUnknownRole(t *testing.T) {
	path := Path(t.TempDir())
	if err := Save(path, State{Role: "leader", Epoch: 1}); err == nil {
		t.Fatal("Save accepted role leader")
	}
	if _, ok, _ := Load(path); ok {
		t.Error("a refused Save wrote a file")
	}
}

func TestLoadCorrupt(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"empty", "", "corrupt file"},
		{"truncated", `{"version":1,"role":"prim`, "corrupt file"},
		{"not json", "primary 3", "corrupt file"},
		{"trailing data", `{"version":1,"role":"primary","epoch":1}{}`, "corrupt file: trailing data"},
		{"unknown field", `{"version":1,"role":"primary","epoch":1,"x":2}`, "corrupt file"},
		{"negative epoch", `{"version":1,"role":"primary","epoch":-1}`, "corrupt file"},
		{"unknown role", `{"version":1,"role":"leader","epoch":1}`, `corrupt file: unknown role "leader"`},
		{"missing version", `{"role":"primary","epoch":1}`, "unsupported version 0"},
		{"future version", `{"version":2,"role":"primary","epoch":1}`, "unsupported version 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := Path(t.TempDir())
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, ok, err := Load(path)
			if err == nil {
				t.Fatalf("Load(%q) = %+v, %v, nil; want an error", tt.content, s, ok)
			}
			if ok || s != (State{}) {
				t.Errorf("Load returned state %+v, %v with its error", s, ok)
			}
			if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q should name %s and say %q", msg, path, tt.want)
			}
		})
	}
}

// TestInterruptedSaveIsIgnored models a crash between writing the temporary
// file and renaming it: the leftover temporary file must not change what
// Load sees, and a later Save must still succeed.
func TestInterruptedSaveIsIgnored(t *testing.T) {
	dir := t.TempDir()
	path := Path(dir)
	if err := Save(path, State{Role: RoleStandby, Epoch: 3}); err != nil {
		t.Fatal(err)
	}
	leftover := filepath.Join(dir, "."+FileName+".123456.tmp")
	if err := os.WriteFile(leftover, []byte(`{"version":1,"role":"primary","ep`), 0o600); err != nil {
		t.Fatal(err)
	}
	got, ok, err := Load(path)
	if err != nil || !ok || got != (State{Role: RoleStandby, Epoch: 3}) {
		t.Fatalf("Load with leftover temp file = %+v, %v, %v", got, ok, err)
	}
	if err := Save(path, State{Role: RolePrimary, Epoch: 4}); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := Load(path); got != (State{Role: RolePrimary, Epoch: 4}) {
		t.Fatalf("Load after Save = %+v", got)
	}

	// A crash before the first rename leaves only a temporary file: the
	// state is still absent, not corrupt.
	fresh := t.TempDir()
	if err := os.WriteFile(filepath.Join(fresh, "."+FileName+".1.tmp"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := Load(Path(fresh)); ok || err != nil {
		t.Fatalf("Load with only a temp file = %v, %v; want absent", ok, err)
	}
}

// TestConcurrentSaveLoad checks that a reader never sees a torn or corrupt
// file while writers replace it.
func TestConcurrentSaveLoad(t *testing.T) {
	path := Path(t.TempDir())
	if err := Save(path, State{Role: RolePrimary, Epoch: 0}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := range 50 {
				if err := Save(path, State{Role: RoleStandby, Epoch: uint64(w*1000 + i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if _, ok, err := Load(path); err != nil || !ok {
				t.Errorf("Load during Save = %v, %v", ok, err)
				return
			}
		}
	})
	wg.Wait()
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestDefaultDir(t *testing.T) {
	base, err := os.UserCacheDir()
	if err != nil || base == "" {
		base = os.TempDir()
	}
	tests := []struct{ node, elem string }{
		{"primary@127.0.0.1:4370", "primary_127.0.0.1_4370"},
		{"standby@[::1]:4370", "standby____1__4370"},
		{"a/b\\c@h:1", "a_b_c_h_1"},
		{"", "standalone"},
		{"..", "__"},
		{".", "_"},
	}
	dir := func(node string) string {
		d, err := DefaultDir(node)
		if err != nil {
			t.Fatalf("DefaultDir(%q): %v", node, err)
		}
		return d
	}
	for _, tt := range tests {
		if got, want := dir(tt.node), filepath.Join(base, "mesh", tt.elem); got != want {
			t.Errorf("DefaultDir(%q) = %q, want %q", tt.node, got, want)
		}
	}
	if dir("primary@127.0.0.1:4370") == dir("standby@[::1]:4370") {
		t.Error("two nodes share a state directory")
	}
}

func TestDefaultDirWithoutCacheDir(t *testing.T) {
	// With neither XDG_CACHE_HOME nor HOME set, UserCacheDir fails on Unix.
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if _, err := os.UserCacheDir(); err == nil {
		t.Fatal("UserCacheDir found a cache directory without HOME; the fallback is not exercised")
	}
	base := filepath.Join(tmp, fmt.Sprintf("mesh-%d", os.Getuid()))
	got, err := DefaultDir("a@h:1")
	if want := filepath.Join(base, "a_h_1"); err != nil || got != want {
		t.Fatalf("DefaultDir = %q, %v; want %q", got, err, want)
	}
	st, err := os.Stat(base)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("fallback base %s: %v, mode %v; want a 0700 directory", base, err, st.Mode().Perm())
	}
	// An existing base that is private but not 0700 is accepted.
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := DefaultDir("a@h:1"); err != nil {
		t.Fatalf("a 0755 base of this user is refused: %v", err)
	}

	refused := []struct {
		name  string
		setup func(t *testing.T)
		want  string
	}{
		{"group writable", func(t *testing.T) { mustDo(t, os.Chmod(base, 0o770)) }, "is writable by other users (mode 0770)"},
		{"world writable", func(t *testing.T) { mustDo(t, os.Chmod(base, 0o777)) }, "is writable by other users (mode 0777)"},
		{"a file", func(t *testing.T) { mustDo(t, os.RemoveAll(base)); mustDo(t, os.WriteFile(base, nil, 0o600)) }, "is not a directory"},
		{"a symbolic link", func(t *testing.T) {
			mustDo(t, os.RemoveAll(base))
			mustDo(t, os.Symlink(t.TempDir(), base))
		}, "is not a directory"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			mustDo(t, os.RemoveAll(base))
			mustDo(t, os.Mkdir(base, 0o700))
			tt.setup(t)
			_, err := DefaultDir("a@h:1")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "set MESH_STATE_DIR") {
				t.Fatalf("DefaultDir = %v, want an error with %q naming MESH_STATE_DIR", err, tt.want)
			}
		})
	}
}

// TestPrivateDirRefusesAnotherUsersDirectory: a directory owned by another
// user is refused (as root the test makes one; otherwise "/" is one).
func TestPrivateDirRefusesAnotherUsersDirectory(t *testing.T) {
	dir := "/"
	if os.Getuid() == 0 {
		dir = filepath.Join(t.TempDir(), "planted")
		mustDo(t, os.Mkdir(dir, 0o700))
		mustDo(t, os.Chown(dir, 65534, 65534))
	}
	err := PrivateDir(dir)
	if err == nil || !strings.Contains(err.Error(), "not to this user") {
		t.Fatalf("PrivateDir(%s) = %v, want a refusal naming the owner", dir, err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestMerge(t *testing.T) {
	p := func(e uint64) State { return State{Role: RolePrimary, Epoch: e} }
	s := func(e uint64) State { return State{Role: RoleStandby, Epoch: e} }
	tests := []struct {
		name                  string
		configured, persisted State
		want                  State
	}{
		{"nothing persisted", p(0), State{}, p(0)},
		{"nothing persisted standby", s(2), State{}, s(2)},
		{"fenced primary restarts with stale config", p(0), s(1), s(1)},
		{"promoted standby restarts with stale config", s(0), p(1), p(1)},
		{"persisted epoch above configured", s(1), p(5), p(5)},
		{"configured epoch above persisted", p(7), s(3), p(7)},
		{"configured standby above persisted primary", s(7), p(3), s(7)},
		{"same epoch both primary", p(2), p(2), p(2)},
		{"same epoch: configured role wins (operator swapped roles)", p(2), s(2), p(2)},
		{"same epoch configured standby", s(2), p(2), s(2)},
		{"same epoch both standby", s(2), s(2), s(2)},
		{"unknown configured role", State{Role: "leader", Epoch: 4}, p(1), s(4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Merge(tt.configured, tt.persisted); got != tt.want {
				t.Errorf("Merge(%+v, %+v) = %+v, want %+v", tt.configured, tt.persisted, got, tt.want)
			}
		})
	}
}

// TestMergeNeverLowersEpoch checks the safety property over a grid of inputs:
// the merged epoch is at least the persisted one and the configured one, and
// the result is primary only if the input holding the winning epoch says
// primary, and at a tied epoch only if the configuration says primary.
func TestMergeNeverLowersEpoch(t *testing.T) {
	roles := []string{RolePrimary, RoleStandby, ""}
	for _, cr := range roles {
		for _, pr := range roles {
			for ce := range uint64(4) {
				for pe := range uint64(4) {
					c, ps := State{Role: cr, Epoch: ce}, State{Role: pr, Epoch: pe}
					got := Merge(c, ps)
					name := fmt.Sprintf("Merge(%+v, %+v) = %+v", c, ps, got)
					if got.Epoch < ce || got.Epoch < pe || !got.Valid() {
						t.Fatalf("%s: epoch lowered or role invalid", name)
					}
					if got.Role == RolePrimary && ps != (State{}) {
						fromC := ce == got.Epoch && cr == RolePrimary
						fromP := pe == got.Epoch && pr == RolePrimary
						if !fromC && !fromP {
							t.Fatalf("%s: primary without a primary input at that epoch", name)
						}
						if ce == pe && !fromC {
							t.Fatalf("%s: primary at a tied epoch needs a primary configuration", name)
						}
					}
				}
			}
		}
	}
}
