package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// pipeIntoQuietGrep finds a pipeline that ends in grep -q. Under
// `set -o pipefail` such a check can read as "not found" although the line
// is there: grep -q exits at the first match, the command feeding it may die
// of SIGPIPE, and the pipeline reports that failure. A check for a leaked
// secret would then pass over the leak.
var pipeIntoQuietGrep = regexp.MustCompile(`\|\s*grep\s+(-[A-Za-z]+\s+)*-[A-Za-z]*q`)

func TestScriptsNeverPipeIntoQuietGrep(t *testing.T) {
	root := railRepoRoot(t)
	var files []string
	for _, glob := range []string{"scripts/*.sh", "scripts/lib/*.sh", "scripts/tests/*.sh", "examples/*/scripts/*.sh", "bench/*.sh"} {
		m, err := filepath.Glob(filepath.Join(root, glob))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d scripts under %s; the globs are wrong", len(files), root)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				continue
			}
			if pipeIntoQuietGrep.MatchString(line) {
				rel, _ := filepath.Rel(root, f)
				t.Errorf("%s:%d pipes into grep -q, which pipefail can turn into a miss; send grep's output to /dev/null instead: %s", rel, i+1, strings.TrimSpace(line))
			}
		}
	}
}
