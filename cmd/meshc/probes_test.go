package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// starterProbeFacts are what the PostgreSQL starter's code says about its
// probes: the paths its router mounts and the ports it serves on.
type starterProbeFacts struct {
	livez, readyz string // probe paths
	httpPort      string // config.DefaultPort
	clusterPort   string // the Dockerfile's MESH_CLUSTER_PORT
}

// readStarterCode reads the probe facts from the starter's Go sources and
// Dockerfile, failing when a fact cannot be found: the manifests are checked
// against these, never against constants of the test.
func readStarterCode(t *testing.T, dir string) starterProbeFacts {
	t.Helper()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	find := func(rel, pattern string) string {
		m := regexp.MustCompile(pattern).FindStringSubmatch(read(rel))
		if m == nil {
			t.Fatalf("%s: no match for %s", rel, pattern)
		}
		return m[1]
	}
	f := starterProbeFacts{
		livez:       find("api/router.go", `LivenessPath\s+=\s+"([^"]+)"`),
		readyz:      find("api/router.go", `ReadinessPath\s+=\s+"([^"]+)"`),
		httpPort:    find("config/config.go", `DefaultPort\s+=\s+(\d+)`),
		clusterPort: find("Dockerfile", `MESH_CLUSTER_PORT=(\d+)`),
	}
	router := read("api/router.go")
	for _, mount := range []string{`mux.Handle("GET "+LivenessPath, mesh.LivenessHandler())`, `mux.Handle("GET "+ReadinessPath, mesh.ReadinessHandler())`} {
		if !strings.Contains(router, mount) {
			t.Fatalf("api/router.go does not mount %s", mount)
		}
	}
	if !strings.Contains(read("main.go"), `os.Args[1] == "probe"`) {
		t.Fatal("main.go has no probe command for the compose healthcheck")
	}
	return f
}

// composeHealthchecks returns each service's healthcheck test command, read
// line by line (the test: value is a flow sequence of quoted strings, which
// is JSON).
func composeHealthchecks(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	walkCompose(b, func(l composeLine) {
		if l.section == "healthcheck" && l.indent == 6 && strings.HasPrefix(l.text, "test:") {
			var cmd []string
			if err := json.Unmarshal([]byte(strings.TrimSpace(strings.TrimPrefix(l.text, "test:"))), &cmd); err != nil {
				t.Fatalf("line %d: healthcheck test %q is not a list of strings: %v", l.number, l.text, err)
			}
			out[l.service] = cmd
		}
	})
	return out
}

// k8sList is the part of deploy/kubernetes.json the checks read.
type k8sList struct {
	Kind  string `json:"kind"`
	Items []struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			// Service
			ClusterIP                string `json:"clusterIP"`
			PublishNotReadyAddresses bool   `json:"publishNotReadyAddresses"`
			Ports                    []struct {
				Name       string `json:"name"`
				Port       int    `json:"port"`
				TargetPort any    `json:"targetPort"`
			} `json:"ports"`
			// StatefulSet
			Replicas    int    `json:"replicas"`
			ServiceName string `json:"serviceName"`
			Template    struct {
				Spec struct {
					InitContainers []k8sContainer `json:"initContainers"`
					Containers     []k8sContainer `json:"containers"`
					Volumes        []struct {
						Name   string `json:"name"`
						Secret *struct {
							SecretName  string `json:"secretName"`
							DefaultMode *int   `json:"defaultMode"`
						} `json:"secret"`
						EmptyDir *struct {
							Medium string `json:"medium"`
						} `json:"emptyDir"`
					} `json:"volumes"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	} `json:"items"`
}

type k8sContainer struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	LivenessProbe  *k8sProbe `json:"livenessProbe"`
	ReadinessProbe *k8sProbe `json:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

func (c k8sContainer) env(name string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value, true
		}
	}
	return "", false
}

// port resolves a probe port (a number or a port name) to a number.
func (c k8sContainer) port(p any) string {
	switch v := p.(type) {
	case float64:
		return strconv.Itoa(int(v))
	case string:
		for _, cp := range c.Ports {
			if cp.Name == v {
				return strconv.Itoa(cp.ContainerPort)
			}
		}
	}
	return ""
}

// mountOf returns the volume mounted at the directory holding path.
func (c k8sContainer) mountOf(path string) string {
	for _, m := range c.VolumeMounts {
		if filepath.Dir(path) == m.MountPath {
			return m.Name
		}
	}
	return ""
}

// TestStarterProbeManifests checks the PostgreSQL starter's compose file
// (line by line) and Kubernetes example (encoding/json) against its code:
// probe paths are the ones the router mounts, probe ports the HTTP port the
// service listens on, the cluster port the one the image sets, and the
// cookie reaches Kubernetes pods as a private file from a Secret. It runs on
// a freshly generated project and on the committed example.
func TestStarterProbeManifests(t *testing.T) {
	generated := filepath.Join(newProject(t, "todo-postgres", "--template", "todo-api", "--db", "postgres"), "todo-postgres")
	for _, dir := range []string{generated, filepath.Join(repoRoot(t), "examples", "todo-postgres")} {
		t.Run(filepath.Base(filepath.Dir(dir)), func(t *testing.T) {
			code := readStarterCode(t, dir)
			checkComposeProbes(t, dir, code)
			checkKubernetesProbes(t, dir, code)
		})
	}
}

func checkComposeProbes(t *testing.T, dir string, code starterProbeFacts) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	checks := composeHealthchecks(t, b)
	ports, env := composeFacts(t, b)
	nodes := 0
	for service, vars := range env {
		if _, ok := vars["MESH_CLUSTER_COOKIE"]; !ok {
			continue
		}
		nodes++
		want := []string{"CMD", "/usr/local/bin/todo-postgres", "probe", code.livez, code.readyz}
		if got := checks[service]; !slices.Equal(got, want) {
			t.Errorf("service %s: healthcheck test %q, want %q", service, got, want)
		}
		if vars["PORT"] != code.httpPort {
			t.Errorf("service %s: PORT %q, want the port the probe command and the service use, %s", service, vars["PORT"], code.httpPort)
		}
		if vars["MESH_CLUSTER_PORT"] != code.clusterPort {
			t.Errorf("service %s: MESH_CLUSTER_PORT %q, want %s", service, vars["MESH_CLUSTER_PORT"], code.clusterPort)
		}
		published := slices.ContainsFunc(ports, func(p composePort) bool { return p.service == service && p.container == code.httpPort })
		if !published {
			t.Errorf("service %s: HTTP port %s is not published", service, code.httpPort)
		}
	}
	if nodes != 2 {
		t.Fatalf("found %d node services, want 2", nodes)
	}
}

func checkKubernetesProbes(t *testing.T, dir string, code starterProbeFacts) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "deploy", "kubernetes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list k8sList
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("deploy/kubernetes.json: %v", err)
	}
	if list.Kind != "List" {
		t.Fatalf("deploy/kubernetes.json is a %q, want a List", list.Kind)
	}
	headless := map[string]bool{} // headless Services publishing not-ready pods on the cluster port
	var roles []string
	for _, item := range list.Items {
		if item.Kind == "Service" && item.Spec.ClusterIP == "None" {
			ok := item.Spec.PublishNotReadyAddresses && len(item.Spec.Ports) == 1 &&
				strconv.Itoa(item.Spec.Ports[0].Port) == code.clusterPort
			headless[item.Metadata.Name] = ok
		}
	}
	for _, item := range list.Items {
		if item.Kind != "StatefulSet" {
			continue
		}
		name := item.Metadata.Name
		pod := item.Spec.Template.Spec
		if item.Spec.Replicas != 1 || len(pod.Containers) != 1 {
			t.Fatalf("%s: want one replica of one container", name)
		}
		c := pod.Containers[0]
		for _, p := range []struct {
			kind  string
			probe *k8sProbe
			path  string
		}{{"liveness", c.LivenessProbe, code.livez}, {"readiness", c.ReadinessProbe, code.readyz}} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: no %s httpGet probe", name, p.kind)
				continue
			}
			if p.probe.HTTPGet.Path != p.path || c.port(p.probe.HTTPGet.Port) != code.httpPort {
				t.Errorf("%s: %s probe GET %s on port %v (%s), want %s on %s", name, p.kind,
					p.probe.HTTPGet.Path, p.probe.HTTPGet.Port, c.port(p.probe.HTTPGet.Port), p.path, code.httpPort)
			}
		}
		if v, _ := c.env("PORT"); v != code.httpPort {
			t.Errorf("%s: PORT %q, want %s", name, v, code.httpPort)
		}
		if v, _ := c.env("MESH_CLUSTER_PORT"); v != code.clusterPort || c.port("cluster") != code.clusterPort {
			t.Errorf("%s: MESH_CLUSTER_PORT %q and port cluster %q, want %s", name, v, c.port("cluster"), code.clusterPort)
		}
		if seed, _ := c.env("MESH_DISCOVERY_SEED"); !headless[seed] || item.Spec.ServiceName != seed {
			t.Errorf("%s: discovery seed %q is not a headless Service on port %s that publishes not-ready pods", name, seed, code.clusterPort)
		}
		role, _ := c.env("MESH_CONTINUITY_ROLE")
		roles = append(roles, role)

		// The cookie: from a Secret, copied by an init container into a
		// private file, read through MESH_CLUSTER_COOKIE_FILE; never a
		// plain environment value.
		if _, ok := c.env("MESH_CLUSTER_COOKIE"); ok {
			t.Errorf("%s: sets MESH_CLUSTER_COOKIE; the cookie must come from the Secret file", name)
		}
		cookieFile, ok := c.env("MESH_CLUSTER_COOKIE_FILE")
		if !ok || c.mountOf(cookieFile) == "" {
			t.Errorf("%s: MESH_CLUSTER_COOKIE_FILE %q is not on a mounted volume", name, cookieFile)
			continue
		}
		if len(pod.InitContainers) != 1 {
			t.Fatalf("%s: want one init container that installs the cookie file", name)
		}
		ic := pod.InitContainers[0]
		cmd := ic.Command
		if len(cmd) < 2 || cmd[0] != "install" || !slices.Contains(cmd, "600") || cmd[len(cmd)-1] != cookieFile ||
			ic.mountOf(cookieFile) != c.mountOf(cookieFile) {
			t.Errorf("%s: init container %q does not install %s with mode 600 on the volume the node reads", name, cmd, cookieFile)
		}
		src := cmd[len(cmd)-2]
		secretVolume := ic.mountOf(src)
		for _, v := range pod.Volumes {
			switch v.Name {
			case secretVolume:
				if v.Secret == nil || v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o077 != 0 {
					t.Errorf("%s: volume %s is not a Secret readable by its owner only", name, v.Name)
				}
			case c.mountOf(cookieFile):
				if v.EmptyDir == nil || v.EmptyDir.Medium != "Memory" {
					t.Errorf("%s: the cookie file's volume %s is not an in-memory emptyDir", name, v.Name)
				}
			}
		}
	}
	slices.Sort(roles)
	if !slices.Equal(roles, []string{"primary", "standby"}) {
		t.Fatalf("StatefulSet roles %v, want one primary and one standby", roles)
	}
}
