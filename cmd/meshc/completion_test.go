package main

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// completionScript runs meshc completion shell in process.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"completion", shell}, &stdout, &stderr); err != nil {
		t.Fatalf("meshc completion %s: %v", shell, err)
	}
	if stderr.Len() > 0 {
		t.Fatalf("meshc completion %s wrote to stderr: %q", shell, stderr.String())
	}
	return stdout.String()
}

// TestCompletionScriptsParse checks each script with its shell's syntax
// check (-n), for the shells installed here, and that every command and flag
// of the command table is in every script.
func TestCompletionScriptsParse(t *testing.T) {
	tree := completionTree()
	for _, shell := range completionShells {
		t.Run(shell, func(t *testing.T) {
			script := completionScript(t, shell)
			tree.walk(func(n *compNode) {
				if len(n.path) > 0 && !strings.Contains(script, n.name()) {
					t.Errorf("the %s script lacks command %q", shell, strings.Join(n.path, " "))
				}
				for _, f := range n.flags {
					want := map[string]string{"bash": "--" + f.name, "zsh": "'--" + f.name + "[", "fish": "-l " + f.name}[shell]
					if !strings.Contains(script, want) {
						t.Errorf("the %s script lacks flag --%s of meshc %s (looked for %q)", shell, f.name, strings.Join(n.path, " "), want)
					}
				}
			})
			bin, err := exec.LookPath(shell)
			if err != nil {
				t.Skipf("%s is not installed here; the script's syntax is not checked", shell)
			}
			file := filepath.Join(t.TempDir(), "meshc."+shell)
			if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-n", file).CombinedOutput(); err != nil {
				t.Fatalf("%s -n: %v\n%s", shell, err, out)
			}
		})
	}

	// Loaded into zsh the way the script's header says, it registers itself
	// for meshc and defines one function per command.
	if zsh, err := exec.LookPath("zsh"); err == nil {
		file := filepath.Join(t.TempDir(), "meshc.zsh")
		os.WriteFile(file, []byte(completionScript(t, "zsh")), 0o644)
		cmd := exec.Command(zsh, "-f", "-c", "autoload -U compinit && compinit -u -D; source "+file+
			"; print -r -- $_comps[meshc]; whence -w _meshc_cluster_status _meshc_migrate_args")
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		want := "_meshc\n_meshc_cluster_status: function\n_meshc_migrate_args: function\n"
		if err != nil || string(out) != want {
			t.Errorf("zsh: %v, printed %q, want %q", err, out, want)
		}
	}

	// The syntax check can fail: a broken script is refused.
	bash, err := exec.LookPath("bash")
	if err != nil {
		return
	}
	broken := filepath.Join(t.TempDir(), "broken.bash")
	os.WriteFile(broken, []byte(strings.Replace(completionScript(t, "bash"), "esac", "", 1)), 0o644)
	if exec.Command(bash, "-n", broken).Run() == nil {
		t.Error("bash -n accepted a script with an esac removed")
	}
}

// TestBashCompletionCompletes loads the bash script and asks it for
// completions the way bash does, through COMP_WORDS and COMP_CWORD.
func TestBashCompletionCompletes(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed here")
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "meshc.bash")
	os.WriteFile(script, []byte(completionScript(t, "bash")), 0o644)
	os.Mkdir(filepath.Join(dir, "my-app"), 0o755)
	tests := []struct {
		line string // the command line; the last word is completed
		want []string
	}{
		{"meshc ", []string{"init", "build", "test", "migrate", "cluster", "completion", "version"}},
		{"meshc cl", []string{"cluster"}},
		{"meshc cluster ", []string{"status", "continuity", "diagnostics", "switchover", "cookie"}},
		{"meshc cluster switchover node@127.0.0.1:4370 --t", []string{"--timeout-ms", "--to"}},
		{"meshc cluster status --j", []string{"--json"}},
		{"meshc cluster continuity node@127.0.0.1:4370 --l", []string{"--limit"}},
		{"meshc cluster status --cookie ", nil},
		{"meshc init --db ", []string{"sqlite", "postgres"}},
		{"meshc init --template ", []string{"todo-api"}},
		{"meshc init --v", []string{"--vendor"}},
		{"meshc init --mesh-source my", []string{"my-app"}},
		{"meshc migrate u", []string{"up"}},
		{"meshc migrate my", []string{"my-app"}},
		{"meshc build --o", []string{"--output"}},
		{"meshc completion ", []string{"bash", "zsh", "fish"}},
		{"meshc version ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			words := strings.Split(tc.line, " ")
			var quoted []string
			for _, w := range words {
				quoted = append(quoted, "'"+w+"'")
			}
			prog := "source " + script + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\nCOMP_CWORD=" +
				strconv.Itoa(len(words)-1) + "\n_meshc\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
			cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := strings.Fields(string(out))
			if !slices.Equal(got, tc.want) {
				t.Errorf("completions %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFishCompletionCompletes asks fish itself (complete -C) when fish is
// installed.
func TestFishCompletionCompletes(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed here")
	}
	script := filepath.Join(t.TempDir(), "meshc.fish")
	os.WriteFile(script, []byte(completionScript(t, "fish")), 0o644)
	tests := []struct {
		line string
		want []string
	}{
		{"meshc cluster st", []string{"status"}},
		{"meshc cluster status --j", []string{"--json"}},
		{"meshc init --db ", []string{"postgres", "sqlite"}},
		{"meshc completion ", []string{"bash", "fish", "zsh"}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			out, err := exec.Command(fish, "--no-config", "-c", "source "+script+"; complete -C '"+tc.line+"'").CombinedOutput()
			if err != nil {
				t.Fatalf("fish: %v\n%s", err, out)
			}
			var got []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if w, _, _ := strings.Cut(line, "\t"); w != "" {
					got = append(got, w)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("completions %q, want %q\n%s", got, tc.want, out)
			}
		})
	}
}

func TestCompletionErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"completion"}, "meshc completion takes one shell (bash, zsh or fish), got 0 arguments"},
		{[]string{"completion", "bash", "zsh"}, "got 2 arguments"},
		{[]string{"completion", "powershell"}, `meshc completion: unknown shell "powershell"; supported: bash, zsh, fish`},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), tc.args, &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) || exitCode(err) != exitUsage || stdout.Len() > 0 {
			t.Errorf("meshc %s: err %v (exit %d), stdout %q; want an exit-2 error containing %q", strings.Join(tc.args, " "), err, exitCode(err), stdout.String(), tc.want)
		}
	}
}

// helpFlags reads the flag names listed under "Flags:" in a help text, in
// both layouts meshc uses ("  --name VALUE  text" and flag.PrintDefaults'
// "  -name value").
func helpFlags(help string) []string {
	var out []string
	in := false
	re := regexp.MustCompile(`^\s+--?([a-z][a-z-]*)\b`)
	for _, line := range strings.Split(help, "\n") {
		switch {
		case strings.TrimSpace(line) == "Flags:":
			in = true
		case in && strings.TrimSpace(line) == "":
			in = false
		case in:
			if m := re.FindStringSubmatch(line); m != nil {
				out = append(out, m[1])
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestCommandTableMatchesCommands checks the table the completion scripts
// come from against the commands themselves: every command's --help exits 0
// and has an example; every flag in the table is accepted by the command; and
// the flags its help lists are exactly the table's.
func TestCommandTableMatchesCommands(t *testing.T) {
	completionTree().walk(func(n *compNode) {
		name := strings.TrimSpace("meshc " + strings.Join(n.path, " "))
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), append(slices.Clone(n.path), "--help"), &stdout, &stderr)
			if err != nil && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("%s --help: %v", name, err)
			}
			help := stdout.String()
			if !strings.Contains(help, "\nExample") {
				t.Errorf("%s --help has no example:\n%s", name, help)
			}
			var tableFlags []string
			for _, f := range n.flags {
				tableFlags = append(tableFlags, f.name)
				value := "x"
				if f.value == "" {
					value = "true"
				} else if f.value == "MS" || f.value == "N" {
					value = "1"
				}
				stdout.Reset()
				err := run(t.Context(), append(slices.Clone(n.path), "--"+f.name+"="+value, "--help"), &stdout, &stderr)
				if !errors.Is(err, flag.ErrHelp) {
					t.Errorf("%s --%s=%s --help: %v, want the help (the command does not take the flag)", name, f.name, value, err)
				}
			}
			slices.Sort(tableFlags)
			if got := helpFlags(help); len(n.subs) == 0 && !slices.Equal(got, tableFlags) {
				t.Errorf("%s --help lists flags %q, the command table %q", name, got, tableFlags)
			}
		})
	})
}
