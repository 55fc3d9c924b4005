package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTestCommand(t *testing.T) {
	parent := newProject(t, "tapp")
	project := filepath.Join(parent, "tapp")

	t.Run("passes go test flags after --", func(t *testing.T) {
		res := mustMeshc(t, parent, nil, "test", "tapp", "--", "-run", "TestGreeting", "-v")
		if !strings.Contains(res.stdout, "=== RUN   TestGreeting") || !strings.Contains(res.stdout, "--- PASS: TestGreeting") {
			t.Errorf("stdout lacks the verbose run of TestGreeting:\n%s", res.stdout)
		}
	})

	t.Run("a failing test is an error", func(t *testing.T) {
		failing := "package main\n\nimport \"testing\"\n\nfunc TestFails(t *testing.T) { t.Fatal(\"deliberate failure\") }\n"
		if err := os.WriteFile(filepath.Join(project, "fail_test.go"), []byte(failing), 0o644); err != nil {
			t.Fatal(err)
		}
		res := runMeshc(t, project, nil, "test")
		if res.code != 1 {
			t.Errorf("exit %d, want 1", res.code)
		}
		if !strings.Contains(res.stdout, "deliberate failure") || !strings.Contains(res.stdout, "FAIL") {
			t.Errorf("go test output was not streamed to stdout:\n%s", res.stdout)
		}
		if want := "error: tests failed in .: exit status 1; the failures are above, rerun one with meshc test . -- -run <TestName> -v\n"; !strings.HasSuffix(res.stderr, want) {
			t.Errorf("stderr = %q, want it to end with %q", res.stderr, want)
		}
	})
}
