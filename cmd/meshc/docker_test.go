package main

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// dockerfile is what the checks read from a Dockerfile.
type dockerfile struct {
	from       []string
	copies     [][2]string // source, destination
	env        map[string]string
	expose     []string
	entrypoint []string
	// buildCommands are the "meshc build" command lines of its comments:
	// how the binary it copies is meant to be built.
	buildCommands []string
}

// parseDockerfile reads the instructions the starter's Dockerfile uses
// (FROM, RUN, COPY, ENV key=value..., EXPOSE, WORKDIR, USER, exec-form
// ENTRYPOINT), joining continuation lines. Any other instruction or form is
// an error, so a change the checks cannot read fails them.
func parseDockerfile(b []byte) (dockerfile, error) {
	d := dockerfile{env: map[string]string{}}
	var logical []string
	var cur strings.Builder
	for _, raw := range strings.Split(string(b), "\n") {
		line := strings.TrimSpace(raw)
		if cur.Len() == 0 && strings.HasPrefix(line, "#") {
			if c := strings.TrimSpace(strings.TrimPrefix(line, "#")); strings.Contains(c, "meshc build") {
				d.buildCommands = append(d.buildCommands, c)
			}
			continue
		}
		if line == "" && cur.Len() == 0 {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		return d, fmt.Errorf("continuation at the end of the file: %q", cur.String())
	}
	for _, l := range logical {
		kw, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(kw) {
		case "FROM":
			d.from = append(d.from, rest)
		case "RUN", "WORKDIR", "USER":
		case "COPY":
			f := strings.Fields(rest)
			if len(f) != 2 || strings.HasPrefix(f[0], "--") {
				return d, fmt.Errorf("COPY %q: only COPY <src> <dst> is understood", rest)
			}
			d.copies = append(d.copies, [2]string{f[0], f[1]})
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return d, fmt.Errorf("ENV %q: only the key=value form is understood", rest)
				}
				d.env[k] = strings.Trim(v, `"`)
			}
		case "EXPOSE":
			for _, p := range strings.Fields(rest) {
				d.expose = append(d.expose, strings.TrimSuffix(p, "/tcp"))
			}
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				return d, fmt.Errorf("ENTRYPOINT %q is not the exec form: %v", rest, err)
			}
		default:
			return d, fmt.Errorf("instruction %s is not understood by this check", kw)
		}
	}
	return d, nil
}

// markdownSection returns the text under the "## heading" line of md, up to
// the next second-level heading.
func markdownSection(t *testing.T, md, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(md, "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("README has no section %q", heading)
	}
	if i := strings.Index(after, "\n## "); i >= 0 {
		after = after[:i]
	}
	return after
}

// markdownTable reads the first table of a section: each row's first cell
// mapped to its cells, keyed also by the header's column names.
func markdownTable(section string) (header []string, rows map[string][]string) {
	rows = map[string][]string{}
	for _, line := range strings.Split(section, "\n") {
		if !strings.HasPrefix(line, "|") {
			if len(header) > 0 {
				break
			}
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.ReplaceAll(strings.TrimSpace(c), "`", ""))
		}
		switch {
		case header == nil:
			header = cells
		case strings.HasPrefix(cells[0], "---"):
		default:
			rows[cells[0]] = cells
		}
	}
	return header, rows
}

// buildCommandsIn returns the lines of a text that run meshc build for
// Linux, without comment markers.
func buildCommandsIn(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if strings.Contains(line, "meshc build") && strings.Contains(line, "GOOS=") {
			out = append(out, line)
		}
	}
	return out
}

// composePortSpec splits a short-syntax port "[ip:]host:container".
func composePortSpec(t *testing.T, v any) composePort {
	t.Helper()
	s, ok := v.(string)
	parts := strings.Split(s, ":")
	switch {
	case !ok:
		t.Fatalf("port %#v is not a short-syntax string", v)
	case len(parts) == 2:
		return composePort{host: parts[0], container: parts[1]}
	case len(parts) == 3:
		return composePort{hostIP: parts[0], host: parts[1], container: parts[2]}
	}
	t.Fatalf("port %q is not [ip:]host:container", s)
	return composePort{}
}

func asMap(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %#v, not a mapping", what, v)
	}
	return m
}

func asStrings(t *testing.T, v any, what string) []string {
	t.Helper()
	l, ok := v.([]any)
	if !ok {
		t.Fatalf("%s is %#v, not a sequence", what, v)
	}
	var out []string
	for _, e := range l {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("%s holds %#v, not a string", what, e)
		}
		out = append(out, s)
	}
	return out
}

// dockerIncluded says whether the build context keeps rel (a slash path)
// under the .dockerignore patterns: the last pattern matching the path or
// one of its parent directories decides, "!" patterns keep.
func dockerIncluded(patterns []string, rel string) bool {
	keep := true
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimPrefix(p, "!")
		parts := strings.Split(rel, "/")
		for i := range parts {
			if ok, _ := filepath.Match(p, strings.Join(parts[:i+1], "/")); ok {
				keep = neg
				break
			}
		}
	}
	return keep
}

// TestDockerStarterWithoutEngine checks the PostgreSQL starter's Dockerfile,
// .dockerignore and docker-compose.yml with no Docker engine: it builds the
// binary with the command the Dockerfile gives and checks it is what the
// image copies and runs, and that the compose file's ports and variables are
// the Dockerfile's and the README's.
func TestDockerStarterWithoutEngine(t *testing.T) {
	const name = "docker-todo"
	project := filepath.Join(newProject(t, name, "--template", "todo-api", "--db", "postgres"), name)
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(project, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	df, err := parseDockerfile([]byte(read("Dockerfile")))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	readme := read("README.md")
	dockerSection := markdownSection(t, readme, "Docker")
	composeSection := markdownSection(t, readme, "Docker Compose")
	composeText := read("docker-compose.yml")

	// One build command, the same everywhere it is written.
	if len(df.buildCommands) != 1 {
		t.Fatalf("the Dockerfile gives %d meshc build commands, want 1: %q", len(df.buildCommands), df.buildCommands)
	}
	buildCmd := df.buildCommands[0]
	for where, text := range map[string]string{"docker-compose.yml": composeText, "README Docker": dockerSection, "README Docker Compose": composeSection} {
		cmds := buildCommandsIn(text)
		if len(cmds) == 0 {
			t.Errorf("%s gives no meshc build command for Linux", where)
		}
		for _, c := range cmds {
			if c != buildCmd {
				t.Errorf("%s builds with %q, the Dockerfile with %q", where, c, buildCmd)
			}
		}
	}

	// Build the binary that way and check it is what the image needs.
	var env, args []string
	fields := strings.Fields(buildCmd)
	for i, f := range fields {
		if f == "meshc" {
			args = fields[i+1:]
			break
		}
		if !strings.Contains(f, "=") {
			t.Fatalf("build command %q: %q is neither VAR=value nor meshc", buildCmd, f)
		}
		env = append(env, f)
	}
	if args == nil {
		t.Fatalf("build command %q does not run meshc", buildCmd)
	}
	mustMeshc(t, project, env, args...)
	if len(df.copies) != 1 {
		t.Fatalf("the Dockerfile copies %d things, want the binary only: %q", len(df.copies), df.copies)
	}
	src, dst := df.copies[0][0], df.copies[0][1]
	bin := filepath.Join(project, src)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("COPY %s: the build command did not write it: %v", src, err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	wantArch := runtime.GOARCH
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if k == "GOARCH" {
			wantArch = v
		}
		if settings[k] != v {
			t.Errorf("the binary was built with %s=%q, the command says %q", k, settings[k], v)
		}
	}
	if settings["GOOS"] != "linux" || settings["CGO_ENABLED"] != "0" || info.Main.Path != name {
		t.Errorf("binary: GOOS=%s CGO_ENABLED=%s module %s; want a linux, cgo-free build of %s", settings["GOOS"], settings["CGO_ENABLED"], info.Main.Path, name)
	}
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the binary is not an ELF executable: %v", err)
	}
	defer ef.Close()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary is dynamically linked; the %s image needs a static one", df.from)
		}
	}
	if want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[wantArch]; want != 0 && ef.Machine != want {
		t.Errorf("binary machine %v, want %v for GOARCH=%s", ef.Machine, want, wantArch)
	}
	if len(df.entrypoint) != 1 || df.entrypoint[0] != dst {
		t.Errorf("ENTRYPOINT %q does not run the copied binary %s", df.entrypoint, dst)
	}

	// The build context holds the binary and nothing else (no .env).
	var ignore []string
	for _, l := range strings.Split(read(".dockerignore"), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			ignore = append(ignore, l)
		}
	}
	var included []string
	filepath.WalkDir(project, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(project, p)
			if dockerIncluded(ignore, filepath.ToSlash(rel)) {
				included = append(included, filepath.ToSlash(rel))
			}
		}
		return err
	})
	if !slices.Equal(included, []string{src}) {
		t.Errorf("the build context holds %q, want only the binary %s", included, src)
	}

	// Ports: the image's, the compose file's and the README's agree.
	httpPort, clusterPort := df.env["PORT"], df.env["MESH_CLUSTER_PORT"]
	if httpPort == "" || clusterPort == "" {
		t.Fatalf("the Dockerfile sets PORT=%q and MESH_CLUSTER_PORT=%q; want both", httpPort, clusterPort)
	}
	if e := slices.Sorted(slices.Values(df.expose)); !slices.Equal(e, slices.Sorted(slices.Values([]string{httpPort, clusterPort}))) {
		t.Errorf("EXPOSE %q, want PORT %s and MESH_CLUSTER_PORT %s", df.expose, httpPort, clusterPort)
	}
	if m := regexp.MustCompile(`DefaultPort\s+=\s+(\d+)`).FindStringSubmatch(read("config/config.go")); m == nil || m[1] != httpPort {
		t.Errorf("config.DefaultPort %v, the image's PORT %s", m, httpPort)
	}
	flat := strings.Join(strings.Fields(dockerSection), " ")
	m := regexp.MustCompile("exposes (\\d+) \\(HTTP\\) and (\\d+) \\(cluster\\) and sets `MESH_CLUSTER_PORT=(\\d+)`").FindStringSubmatch(flat)
	if m == nil || m[1] != httpPort || m[2] != clusterPort || m[3] != clusterPort {
		t.Errorf("README Docker says %q; the Dockerfile exposes %s and %s", m, httpPort, clusterPort)
	}
	if !strings.Contains(flat, "Neither `docker build` nor `docker compose up` was run") {
		t.Error("README Docker does not say that the image and the compose file were not run")
	}

	doc, err := parseYAMLSubset([]byte(composeText))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	services := asMap(t, asMap(t, doc, "the compose file")["services"], "services")
	header, table := markdownTable(composeSection)
	var envVars []string // the README's Environment table
	_, envTable := markdownTable(markdownSection(t, readme, "Environment"))
	for k := range envTable {
		envVars = append(envVars, k)
	}
	var nodes []string
	roles := map[string]bool{}
	images := map[string]bool{}
	for svcName, v := range services {
		svc := asMap(t, v, "service "+svcName)
		if _, ok := svc["build"]; !ok {
			continue
		}
		nodes = append(nodes, svcName)
		col := slices.Index(header, svcName)
		if col < 0 {
			t.Errorf("README Docker Compose table has no column for service %s (header %q)", svcName, header)
			continue
		}
		cell := func(row string) string {
			r, ok := table[row]
			if !ok || col >= len(r) {
				t.Errorf("README Docker Compose table has no %q row", row)
				return ""
			}
			return r[col]
		}
		if svc["build"] != "." {
			t.Errorf("%s builds %q, want the project directory", svcName, svc["build"])
		}
		images[fmt.Sprint(svc["image"])] = true
		envMap := asMap(t, svc["environment"], svcName+" environment")
		get := func(k string) string { s, _ := envMap[k].(string); return s }
		if get("PORT") != httpPort || get("MESH_CLUSTER_PORT") != clusterPort {
			t.Errorf("%s sets PORT=%q MESH_CLUSTER_PORT=%q, the image %s and %s", svcName, get("PORT"), get("MESH_CLUSTER_PORT"), httpPort, clusterPort)
		}
		roles[get("MESH_CONTINUITY_ROLE")] = true
		if get("MESH_NODE_HOST") != svc["hostname"] {
			t.Errorf("%s: MESH_NODE_HOST %q is not its hostname %q", svcName, get("MESH_NODE_HOST"), svc["hostname"])
		}
		aliases := asStrings(t, asMap(t, asMap(t, svc["networks"], svcName+" networks")["default"], "default network")["aliases"], svcName+" network aliases")
		if !slices.Contains(aliases, get("MESH_DISCOVERY_SEED")) {
			t.Errorf("%s: MESH_DISCOVERY_SEED %q is not one of its network aliases %q", svcName, get("MESH_DISCOVERY_SEED"), aliases)
		}
		health := asStrings(t, asMap(t, svc["healthcheck"], svcName+" healthcheck")["test"], svcName+" healthcheck test")
		if len(health) < 3 || health[0] != "CMD" || health[1] != dst || health[2] != "probe" {
			t.Errorf("%s healthcheck %q does not run %s probe", svcName, health, dst)
		}
		u, err := url.Parse(get("DATABASE_URL"))
		if err != nil || u.User == nil {
			t.Fatalf("%s: DATABASE_URL %q: %v", svcName, get("DATABASE_URL"), err)
		}
		pg := asMap(t, asMap(t, services[u.Hostname()], "the database service "+u.Hostname())["environment"], u.Hostname()+" environment")
		pass, _ := u.User.Password()
		if u.Port() != "5432" || pg["POSTGRES_USER"] != u.User.Username() || pg["POSTGRES_PASSWORD"] != pass || pg["POSTGRES_DB"] != strings.TrimPrefix(u.Path, "/") {
			t.Errorf("%s: DATABASE_URL does not match service %s's POSTGRES_* settings", svcName, u.Hostname())
		}

		var httpMap, clusterMap []composePort
		for _, p := range asStrings(t, svc["ports"], svcName+" ports") {
			cp := composePortSpec(t, p)
			switch cp.container {
			case httpPort:
				httpMap = append(httpMap, cp)
			case clusterPort:
				clusterMap = append(clusterMap, cp)
			default:
				t.Errorf("%s publishes container port %s, which the image does not serve", svcName, cp.container)
			}
		}
		if len(httpMap) != 1 || len(clusterMap) > 1 {
			t.Fatalf("%s publishes HTTP %v and cluster %v; want one of each at most", svcName, httpMap, clusterMap)
		}
		if got := cell("HTTP"); got != "localhost:"+httpMap[0].host {
			t.Errorf("README: %s HTTP is %q, the compose file publishes %s", svcName, got, httpMap[0].host)
		}
		// The cluster port is never published beyond loopback: the nodes
		// talk over the compose network, and only meshc on this host
		// inspects them.
		for _, cp := range clusterMap {
			if cp.hostIP != "127.0.0.1" {
				t.Errorf("%s publishes the cluster port on %q, want 127.0.0.1 only", svcName, cp.hostIP)
			}
			if got := cell("cluster port (loopback only)"); got != cp.hostIP+":"+cp.host {
				t.Errorf("README: %s cluster port is %q, the compose file publishes %s:%s", svcName, got, cp.hostIP, cp.host)
			}
		}
		for k := range envMap {
			v := get(k)
			switch {
			case table[k] != nil:
				want := cell(k)
				if want == "from .env" {
					if !strings.HasPrefix(v, "${"+k) {
						t.Errorf("README: %s %s comes from .env, the compose file sets %q", svcName, k, v)
					}
				} else if v != want {
					t.Errorf("README: %s %s is %q, the compose file sets %q", svcName, k, want, v)
				}
			case !slices.Contains(envVars, k):
				t.Errorf("%s sets %s, which the README's Environment table does not list", svcName, k)
			}
		}
	}
	if len(nodes) != 2 || !roles["primary"] || !roles["standby"] || len(images) != 1 {
		t.Errorf("nodes %q with roles %v and images %v; want two nodes of one image, a primary and a standby", nodes, roles, images)
	}
}
