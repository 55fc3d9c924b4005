package e2e

// End-to-end tests of the PostgreSQL Todo starter: examples/todo-postgres run
// as a process (config failures, an unmigrated database, meshc migrate, CRUD),
// and a freshly generated project taken through its public deploy contract
// (stage-deploy into a directory outside the repository, the apply and smoke
// scripts, the staged binary as a single-node cluster inspected through
// meshc cluster).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/scaffold"
	"meshgo.dev/mesh/meshtest"
)

// pgTodo is the wire form of a todo of the PostgreSQL starter.
type pgTodo struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Completed bool   `json:"completed"`
	CreatedAt string `json:"created_at"`
}

const pgHealthFormat = `{"status":"ok","db_backend":"postgres","migration_strategy":"meshc migrate","clustered_handler":"work.SyncTodos","rate_limit_window_seconds":%d,"rate_limit_max_requests":%d}`

const notMigrated = `{"error":"database schema is not migrated; run meshc migrate . up"}`

// bundleFiles is the staged bundle of a project named todo-postgres: exactly
// these files, the first three executable.
var bundleFiles = []string{"apply-deploy-migrations.sh", "deploy-smoke.sh", "todo-postgres", "todo-postgres.up.sql"}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
		} else if !strings.ContainsRune("0123456789abcdef", c) {
			return false
		}
	}
	return true
}

func TestStarterPostgresConfigErrorsNeverServe(t *testing.T) {
	bin := exampleBinary(t, "todo-postgres")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{
			name: "missing DATABASE_URL",
			want: "[todo-api] Config error: Missing required environment variable DATABASE_URL\n",
		},
		{
			name: "non-numeric PORT",
			env:  []string{"DATABASE_URL=postgres://todo:never-printed@127.0.0.1:1/todo", "PORT=http"},
			want: "[todo-api] Config error: Invalid PORT: expected a positive integer\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := startFailing(t, "todo-postgres-config", bin, tt.env...)
			starterContains(t, "log", log, tt.want)
			starterAbsent(t, "log", log, "Connecting to PostgreSQL", "runtime bootstrap", "Runtime ready", "HTTP server starting", "never-printed")
		})
	}
}

func TestStarterPostgresStartFailuresNeverServe(t *testing.T) {
	bin := exampleBinary(t, "todo-postgres")
	t.Run("database unreachable", func(t *testing.T) {
		const url = "postgres://todo:never-printed@127.0.0.1:1/todo"
		log := startFailing(t, "todo-postgres-no-db", bin, "DATABASE_URL="+url)
		starterInOrder(t, "log", log, "[todo-api] Connecting to PostgreSQL pool...\n", "[todo-api] PostgreSQL connect failed: ")
		starterAbsent(t, "log", log, "never-printed", url, "runtime bootstrap", "Runtime ready", "HTTP server starting")
	})
	t.Run("runtime bootstrap error", func(t *testing.T) {
		db := starterDatabaseURL(t)
		const cookie = "never-printed-8Kq2Wn6Yt9Bv3Mx7Cz1Pd5R"
		log := startFailing(t, "todo-postgres-bad-role", bin, "DATABASE_URL="+db,
			"MESH_CLUSTER_COOKIE="+cookie, "MESH_DISCOVERY_SEED=127.0.0.1", "MESH_CONTINUITY_ROLE=leader")
		starterInOrder(t, "log", log, "[todo-api] Connecting to PostgreSQL pool...\n", "[todo-api] runtime bootstrap failed reason=")
		starterAbsent(t, "log", log, append(starterSecrets(t, db), cookie, "PostgreSQL pool ready", "Runtime ready", "HTTP server starting")...)
	})
}

func TestStarterPostgresUnmigratedThenMigrated(t *testing.T) {
	bin := exampleBinary(t, "todo-postgres")
	db := starterDatabaseURL(t)
	secrets := starterSecrets(t, db)
	app, base := startStarter(t, "todo-postgres", bin, "", "DATABASE_URL="+db, "TODO_RATE_LIMIT_MAX_REQUESTS=50")
	port := strings.TrimPrefix(base, "http://127.0.0.1:")

	// Before the migration: health answers without touching the database,
	// the todo routes say what to do, and nothing leaks.
	starterExpect(t, "GET", base+"/health", "", http.StatusOK, fmt.Sprintf(pgHealthFormat, 60, 50))
	for _, target := range []string{"/todos", "/todos/3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"} {
		got := starterExpect(t, "GET", base+target, "", http.StatusServiceUnavailable, notMigrated)
		starterAbsent(t, "unmigrated response", got.body, secrets...)
	}

	meshc := starterMeshc(t)
	example := filepath.Join(starterRoot(t), "examples", "todo-postgres")
	out := starterMustCmd(t, "migrate-up", starterRoot(t), append(starterEnv(), "DATABASE_URL="+db), meshc, "migrate", example, "up")
	starterContains(t, "meshc migrate up", out, "Applying: 20260402120000_create_todos.sql", "Applied 1 migration(s)")
	starterAbsent(t, "meshc migrate up", out, secrets...)

	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)
	for _, body := range []string{`{"title":""}`, `{"title":"  "}`, `{}`, `not json`} {
		starterExpect(t, "POST", base+"/todos", body, http.StatusBadRequest, `{"error":"title is required"}`)
	}
	for _, method := range []string{"GET", "PUT", "DELETE"} {
		starterExpect(t, method, base+"/todos/not-a-uuid", "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
		starterExpect(t, method, base+"/todos/12345", "", http.StatusBadRequest, `{"error":"invalid todo id"}`)
		starterExpect(t, method, base+"/todos/3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b", "", http.StatusNotFound, `{"error":"todo not found"}`)
	}

	created := decodeJSON[pgTodo](t, "create", starterExpectStatus(t, "POST", base+"/todos", `{"title":"  buy milk "}`, http.StatusCreated).body)
	if !isUUID(created.ID) || created.Title != "buy milk" || created.Completed {
		t.Fatalf("created todo = %+v, want a UUID, the trimmed title, not completed", created)
	}
	if _, err := time.Parse(time.RFC3339Nano, created.CreatedAt); err != nil || !strings.HasSuffix(created.CreatedAt, "Z") {
		t.Fatalf("created_at = %q, want RFC 3339 in UTC", created.CreatedAt)
	}
	if got := decodeJSON[pgTodo](t, "get", starterExpectStatus(t, "GET", base+"/todos/"+strings.ToUpper(created.ID), "", http.StatusOK).body); got != created {
		t.Fatalf("GET by upper-case id = %+v, want %+v", got, created)
	}
	if got := decodeJSON[pgTodo](t, "toggle", starterExpectStatus(t, "PUT", base+"/todos/"+created.ID, "", http.StatusOK).body); !got.Completed {
		t.Fatalf("PUT = %+v, want completed", got)
	}
	second := decodeJSON[pgTodo](t, "create", starterExpectStatus(t, "POST", base+"/todos", `{"title":"walk the dog"}`, http.StatusCreated).body)
	list := decodeJSON[[]pgTodo](t, "list", starterExpectStatus(t, "GET", base+"/todos", "", http.StatusOK).body)
	if len(list) != 2 || list[0].ID != second.ID || list[1].ID != created.ID || !list[1].Completed {
		t.Fatalf("GET /todos = %+v, want both todos, newest first, the first completed", list)
	}
	starterExpect(t, "DELETE", base+"/todos/"+created.ID, "", http.StatusOK, fmt.Sprintf(`{"status":"deleted","id":%q}`, created.ID))
	starterExpect(t, "GET", base+"/todos/"+created.ID, "", http.StatusNotFound, `{"error":"todo not found"}`)
	starterExpect(t, "DELETE", base+"/todos/"+second.ID, "", http.StatusOK, fmt.Sprintf(`{"status":"deleted","id":%q}`, second.ID))
	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)

	log := app.Log()
	starterInOrder(t, "log", log,
		fmt.Sprintf("[todo-api] Config loaded port=%s write_limit_window_seconds=60 write_limit_max=50\n", port),
		"[todo-api] Connecting to PostgreSQL pool...\n",
		"[todo-api] runtime bootstrap mode=standalone node= cluster_port=4370 discovery_seed=\n",
		"[todo-api] PostgreSQL pool ready\n",
		fmt.Sprintf("[todo-api] Runtime ready port=%s db_backend=postgres write_limit_window_seconds=60 write_limit_max=50\n", port),
		fmt.Sprintf("[todo-api] HTTP server starting on :%s\n", port),
	)
	starterAbsent(t, "log", log, secrets...)
}

// stagedProject is a project generated with meshc init and staged with its
// stage-deploy script.
type stagedProject struct {
	project string // the generated project directory
	bundle  string // the staged bundle, outside the repository
	output  string // stage-deploy's output
	env     []string
}

// stageProject generates todo-postgres in a fresh workspace with meshc init
// and stages it into a fresh directory outside the repository.
func stageProject(t *testing.T) stagedProject {
	t.Helper()
	meshc := starterMeshc(t)
	root := starterRoot(t)
	workspace := t.TempDir()
	env := append(starterGoEnv(), "PATH="+filepath.Dir(meshc)+string(os.PathListSeparator)+os.Getenv("PATH"))
	starterMustCmd(t, "init", workspace, env, meshc, "init", "--template", "todo-api", "--db", "postgres", "--mesh-source", root, "todo-postgres")
	s := stagedProject{
		project: filepath.Join(workspace, "todo-postgres"),
		bundle:  filepath.Join(t.TempDir(), "bundle"),
		env:     env,
	}
	if strings.HasPrefix(s.bundle, root+string(os.PathSeparator)) {
		t.Fatalf("bundle %s is inside the repository %s", s.bundle, root)
	}
	before, err := scaffold.Manifest(s.project)
	if err != nil {
		t.Fatal(err)
	}
	s.output = starterMustCmd(t, "stage-deploy", s.project, env, "bash", "scripts/stage-deploy.sh", s.bundle)
	after, err := scaffold.Manifest(s.project)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, after) {
		t.Fatalf("stage-deploy changed the source tree:\nbefore %v\nafter  %v", before, after)
	}
	return s
}

func TestStarterPostgresStagedDeploy(t *testing.T) {
	s := stageProject(t)
	lines := []string{"[stage-deploy] staged layout\n"}
	for _, f := range bundleFiles {
		lines = append(lines, fmt.Sprintf("[stage-deploy] - %s\n", filepath.Join(s.bundle, f)))
	}
	starterContains(t, "stage-deploy output", s.output, lines...)
	starterContains(t, "stage-deploy output", s.output, fmt.Sprintf("[stage-deploy] bundle ready dir=%s\n", s.bundle))

	// The bundle is exactly four regular files; the binary and scripts are executable.
	entries, err := os.ReadDir(s.bundle)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		wantExec := e.Name() != "todo-postgres.up.sql"
		if !info.Mode().IsRegular() || (info.Mode()&0o111 != 0) != wantExec {
			t.Errorf("bundle file %s has mode %v; want a regular file, executable: %v", e.Name(), info.Mode(), wantExec)
		}
	}
	if !slices.Equal(names, bundleFiles) {
		t.Fatalf("bundle holds %v, want exactly %v", names, bundleFiles)
	}
	for src, dst := range map[string]string{
		"deploy/schema.up.sql":               "todo-postgres.up.sql",
		"scripts/apply-deploy-migrations.sh": "apply-deploy-migrations.sh",
		"scripts/deploy-smoke.sh":            "deploy-smoke.sh",
	} {
		want, _ := os.ReadFile(filepath.Join(s.project, src))
		got, _ := os.ReadFile(filepath.Join(s.bundle, dst))
		if len(want) == 0 || string(got) != string(want) {
			t.Errorf("bundle %s is not a copy of %s", dst, src)
		}
	}

	// Apply the schema twice (idempotent); without DATABASE_URL the script refuses.
	db := starterDatabaseURL(t)
	secrets := starterSecrets(t, db)
	for i := range 2 {
		out := starterMustCmd(t, fmt.Sprintf("apply-%d", i+1), s.bundle, append(starterEnv(), "DATABASE_URL="+db),
			"bash", "apply-deploy-migrations.sh", "todo-postgres.up.sql")
		starterContains(t, "apply output", out,
			"[deploy-apply] sql artifact=todo-postgres.up.sql\n",
			"[deploy-apply] schema ready table=todos index=idx_todos_created_at\n")
		starterAbsent(t, "apply output", out, secrets...)
	}
	out, code := starterCmd(t, "apply-without-url", s.bundle, starterEnv(), "bash", "apply-deploy-migrations.sh", "todo-postgres.up.sql")
	if code == 0 || !strings.Contains(out, "[deploy-apply] DATABASE_URL must be set") {
		t.Fatalf("apply without DATABASE_URL: exit %d, output:\n%s\nwant a failure saying DATABASE_URL must be set", code, out)
	}

	// Run the staged binary from the bundle and smoke it through its script.
	app, base := startStarter(t, "todo-postgres-staged", filepath.Join(s.bundle, "todo-postgres"), s.bundle,
		"DATABASE_URL="+db, "TODO_RATE_LIMIT_MAX_REQUESTS=20")
	starterExpect(t, "GET", base+"/health", "", http.StatusOK, fmt.Sprintf(pgHealthFormat, 60, 20))
	out = starterMustCmd(t, "deploy-smoke", s.bundle, append(starterEnv(), "BASE_URL="+base), "bash", "deploy-smoke.sh")
	starterContains(t, "deploy-smoke output", out, "[deploy-smoke] health ready body=", "[deploy-smoke] CRUD smoke passed id=")
	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)

	out, code = starterCmd(t, "deploy-smoke-bad-base-url", s.bundle, append(starterEnv(), "BASE_URL=127.0.0.1:8080"), "bash", "deploy-smoke.sh")
	if code == 0 || !strings.Contains(out, "[deploy-smoke] BASE_URL must start with http:// or https://, got: 127.0.0.1:8080") {
		t.Fatalf("smoke with BASE_URL=127.0.0.1:8080: exit %d, output:\n%s", code, out)
	}
	out, code = starterCmd(t, "deploy-smoke-bad-port", s.bundle, append(starterEnv(), "PORT=80a"), "bash", "deploy-smoke.sh")
	if code == 0 || !strings.Contains(out, "[deploy-smoke] PORT must be a positive integer, got: 80a") {
		t.Fatalf("smoke with PORT=80a: exit %d, output:\n%s", code, out)
	}
	starterAbsent(t, "staged binary log", app.Log(), secrets...)
}

func TestStarterPostgresStageDeployRefusals(t *testing.T) {
	example := filepath.Join(starterRoot(t), "examples", "todo-postgres")
	file := filepath.Join(t.TempDir(), "bundle-is-a-file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := starterCmd(t, "stage-into-file", example, starterEnv(), "bash", "scripts/stage-deploy.sh", file)
	if code == 0 || !strings.Contains(out, "[stage-deploy] bundle path exists but is not a directory: "+file) {
		t.Fatalf("stage-deploy into a file: exit %d, output:\n%s", code, out)
	}
	out, code = starterCmd(t, "stage-no-args", example, starterEnv(), "bash", "scripts/stage-deploy.sh")
	if code == 0 || !strings.Contains(out, "usage: bash scripts/stage-deploy.sh <bundle-dir>") {
		t.Fatalf("stage-deploy without arguments: exit %d, output:\n%s", code, out)
	}
	if _, err := os.Lstat(filepath.Join(example, "todo-postgres")); err == nil {
		t.Fatal("a todo-postgres binary exists in examples/todo-postgres")
	}
}

// Operator JSON read by the cluster test (meshc cluster ... --json).
type (
	starterStatus struct {
		Target     string `json:"target"`
		Membership struct {
			LocalNode string   `json:"local_node"`
			Nodes     []string `json:"nodes"`
			PeerNodes []string `json:"peer_nodes"`
		} `json:"membership"`
		Authority struct {
			Role   string `json:"cluster_role"`
			Epoch  uint64 `json:"promotion_epoch"`
			Health string `json:"replication_health"`
		} `json:"authority"`
	}
	starterRecord struct {
		RequestKey       string `json:"request_key"`
		PayloadHash      string `json:"payload_hash"`
		AttemptID        string `json:"attempt_id"`
		Phase            string `json:"phase"`
		Result           string `json:"result"`
		IngressNode      string `json:"ingress_node"`
		OwnerNode        string `json:"owner_node"`
		ReplicaNode      string `json:"replica_node"`
		ReplicationCount int    `json:"replication_count"`
		ReplicaStatus    string `json:"replica_status"`
		ClusterRole      string `json:"cluster_role"`
		PromotionEpoch   uint64 `json:"promotion_epoch"`
		Health           string `json:"replication_health"`
		ExecutionNode    string `json:"execution_node"`
		RoutedRemotely   bool   `json:"routed_remotely"`
		FellBackLocally  bool   `json:"fell_back_locally"`
		Error            string `json:"error"`
		RuntimeName      string `json:"declared_handler_runtime_name"`
	}
	starterContinuity struct {
		Target       string          `json:"target"`
		TotalRecords int             `json:"total_records"`
		Truncated    bool            `json:"truncated"`
		Records      []starterRecord `json:"records"`
	}
	starterDiagnostics struct {
		Entries []struct {
			Transition string  `json:"transition"`
			RequestKey *string `json:"request_key"`
		} `json:"entries"`
	}
)

// operatorJSON runs meshc cluster <args> --json and decodes its output into v.
func operatorJSON(t *testing.T, label string, env []string, v any, args ...string) error {
	t.Helper()
	out, code := starterCmd(t, label, "", env, starterMeshc(t), append(append([]string{"cluster"}, args...), "--json")...)
	if code != 0 {
		return fmt.Errorf("meshc cluster %s exited %d: %s", strings.Join(args, " "), code, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("meshc cluster %s: decode: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// recordsNamed returns the records of runtime name, failing on a record
// without a request key (fail closed).
func recordsNamed(t *testing.T, list starterContinuity, name string) []starterRecord {
	t.Helper()
	var out []starterRecord
	for _, r := range list.Records {
		if r.RequestKey == "" {
			t.Fatalf("continuity record without request_key: %+v", r)
		}
		if r.RuntimeName == name {
			out = append(out, r)
		}
	}
	return out
}

// TestStarterPostgresSingleNodeClusterTruth runs the staged binary as a
// one-node cluster and checks, through meshc cluster only, the startup record
// of work.SyncTodos and the route record of the first GET /todos.
func TestStarterPostgresSingleNodeClusterTruth(t *testing.T) {
	s := stageProject(t)
	db := starterDatabaseURL(t)
	secrets := starterSecrets(t, db)
	starterMustCmd(t, "apply", s.bundle, append(starterEnv(), "DATABASE_URL="+db), "bash", "apply-deploy-migrations.sh", "todo-postgres.up.sql")

	clusterPort := meshtest.FreePort(t)
	node := fmt.Sprintf("todo-postgres@127.0.0.1:%d", clusterPort)
	cookie := fmt.Sprintf("e2e-starter-cookie-%d", time.Now().UnixNano())
	app, base := startStarter(t, "todo-postgres-cluster", filepath.Join(s.bundle, "todo-postgres"), s.bundle,
		"DATABASE_URL="+db,
		"TODO_RATE_LIMIT_WINDOW_SECONDS=60",
		"TODO_RATE_LIMIT_MAX_REQUESTS=20",
		"MESH_CLUSTER_COOKIE="+cookie,
		"MESH_NODE_NAME="+node,
		"MESH_DISCOVERY_SEED=127.0.0.1",
		fmt.Sprintf("MESH_CLUSTER_PORT=%d", clusterPort),
		"MESH_CONTINUITY_ROLE=primary",
		"MESH_CONTINUITY_PROMOTION_EPOCH=0",
	)
	starterContains(t, "log", app.Log(), fmt.Sprintf("[todo-api] runtime bootstrap mode=cluster node=%s cluster_port=%d discovery_seed=127.0.0.1\n", node, clusterPort))
	starterExpect(t, "GET", base+"/health", "", http.StatusOK, fmt.Sprintf(pgHealthFormat, 60, 20))
	opEnv := append(starterEnv(), "MESH_CLUSTER_COOKIE="+cookie)

	// The runtime's probes, as the compose healthcheck and the Kubernetes
	// example use them: a lone fresh primary is live and ready.
	for _, path := range []string{"/livez", "/readyz"} {
		want := fmt.Sprintf(`{"cluster_role":"primary","live":true,"mode":"cluster","node":"%s","promotion_epoch":0,"ready":true,"replication_health":"local_only"}`, node)
		starterExpect(t, "GET", base+path, "", http.StatusOK, want)
	}
	_, port, _ := strings.Cut(strings.TrimPrefix(base, "http://"), ":")
	starterMustCmd(t, "probe", s.bundle, append(starterEnv(), "PORT="+port), filepath.Join(s.bundle, "todo-postgres"), "probe")
	if out, code := starterCmd(t, "probe-missing", s.bundle, append(starterEnv(), "PORT="+port), filepath.Join(s.bundle, "todo-postgres"), "probe", "/no-such-probe"); code == 0 || !strings.Contains(out, "probe /no-such-probe: 404") {
		t.Fatalf("probe of a missing path: exit %d, output %q", code, out)
	}

	var status starterStatus
	if err := operatorJSON(t, "status", opEnv, &status, "status", node); err != nil {
		t.Fatal(err)
	}
	if status.Membership.LocalNode != node || !slices.Equal(status.Membership.Nodes, []string{node}) || len(status.Membership.PeerNodes) != 0 ||
		status.Authority.Role != "primary" || status.Authority.Epoch != 0 || status.Authority.Health != "local_only" {
		t.Fatalf("cluster status = %+v; want %s alone, primary, epoch 0, local_only", status, node)
	}

	// The startup work runs once and completes; it is the only record.
	var list starterContinuity
	meshtest.Eventually(t, startupTimeoutForWork, 200*time.Millisecond, func() error {
		list = starterContinuity{}
		if err := operatorJSON(t, "continuity-startup", opEnv, &list, "continuity", node); err != nil {
			return err
		}
		if len(list.Records) != 1 || list.Records[0].Phase != "completed" {
			return fmt.Errorf("want one completed record, have %+v", list.Records)
		}
		return nil
	})
	if list.TotalRecords != 1 || list.Truncated {
		t.Fatalf("continuity list: total_records=%d truncated=%v, want 1, false", list.TotalRecords, list.Truncated)
	}
	startup := list.Records[0]
	wantStartup := starterRecord{
		RequestKey: "startup::work.SyncTodos", PayloadHash: "startup-payload::work.SyncTodos", AttemptID: startup.AttemptID,
		Phase: "completed", Result: "succeeded", IngressNode: node, OwnerNode: node, ReplicaNode: "",
		ReplicationCount: 2, ReplicaStatus: "unassigned", ClusterRole: "primary", PromotionEpoch: 0, Health: "local_only",
		ExecutionNode: node, RoutedRemotely: false, FellBackLocally: startup.FellBackLocally, Error: "", RuntimeName: "work.SyncTodos",
	}
	if startup != wantStartup || startup.AttemptID == "" {
		t.Fatalf("startup record =\n%+v\nwant\n%+v", startup, wantStartup)
	}

	// startup_completed is recorded just after the record completes, so a
	// reader that saw the completed record may be a moment early.
	var transitions []string
	meshtest.Eventually(t, startupTimeoutForWork, 200*time.Millisecond, func() error {
		var diags starterDiagnostics
		if err := operatorJSON(t, "diagnostics", opEnv, &diags, "diagnostics", node); err != nil {
			return err
		}
		transitions = transitions[:0]
		for _, e := range diags.Entries {
			if e.RequestKey != nil && *e.RequestKey == "startup::work.SyncTodos" {
				transitions = append(transitions, e.Transition)
			}
		}
		for _, want := range []string{"startup_trigger", "startup_completed"} {
			if !slices.Contains(transitions, want) {
				return fmt.Errorf("diagnostics of startup::work.SyncTodos lack %s: %v", want, transitions)
			}
		}
		return nil
	})
	for _, bad := range []string{"startup_rejected", "startup_convergence_timeout"} {
		if slices.Contains(transitions, bad) {
			t.Errorf("diagnostics of startup::work.SyncTodos contain %s: %v", bad, transitions)
		}
	}

	// The first GET /todos adds exactly one route record.
	got := starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)
	key := got.header.Get("X-Mesh-Continuity-Request-Key")
	if !strings.HasPrefix(key, "http-route::api.Todos.List::") {
		t.Fatalf("X-Mesh-Continuity-Request-Key = %q, want an http-route::api.Todos.List:: key", key)
	}
	list = starterContinuity{}
	if err := operatorJSON(t, "continuity-after-list", opEnv, &list, "continuity", node); err != nil {
		t.Fatal(err)
	}
	routes := recordsNamed(t, list, "api.Todos.List")
	if list.TotalRecords != 2 || len(routes) != 1 || len(recordsNamed(t, list, "work.SyncTodos")) != 1 {
		t.Fatalf("after one GET /todos: %d records, %d of api.Todos.List; want 2 records, 1 route record:\n%+v", list.TotalRecords, len(routes), list.Records)
	}
	route := routes[0]
	wantRoute := starterRecord{
		RequestKey: key, PayloadHash: route.PayloadHash, AttemptID: route.AttemptID,
		Phase: "completed", Result: "succeeded", IngressNode: node, OwnerNode: node, ReplicaNode: "",
		ReplicationCount: 1, ReplicaStatus: "unassigned", ClusterRole: "primary", PromotionEpoch: 0, Health: "local_only",
		ExecutionNode: node, RoutedRemotely: false, FellBackLocally: true, Error: "", RuntimeName: "api.Todos.List",
	}
	if route != wantRoute || route.AttemptID == "" || route.PayloadHash == "" {
		t.Fatalf("route record =\n%+v\nwant\n%+v (with an attempt id and a payload hash)", route, wantRoute)
	}

	// The staged smoke passes against the clustered node; route records stay queryable.
	out := starterMustCmd(t, "deploy-smoke", s.bundle, append(starterEnv(), "BASE_URL="+base), "bash", "deploy-smoke.sh")
	starterContains(t, "deploy-smoke output", out, "[deploy-smoke] CRUD smoke passed id=")
	starterExpect(t, "GET", base+"/todos", "", http.StatusOK, `[]`)
	list = starterContinuity{}
	if err := operatorJSON(t, "continuity-after-smoke", opEnv, &list, "continuity", node); err != nil {
		t.Fatal(err)
	}
	if n := len(recordsNamed(t, list, "api.Todos.List")) + len(recordsNamed(t, list, "api.Todos.Get")); n < 1 {
		t.Fatalf("no route records after the smoke: %+v", list.Records)
	}
	starterAbsent(t, "node log", app.Log(), append(secrets, cookie)...)
}

// startupTimeoutForWork bounds the wait for the startup record to complete:
// the runtime lets membership settle and holds a dispatch window first.
const startupTimeoutForWork = 30 * time.Second

// TestStarterPostgresExampleTests runs the example's own tests through meshc
// test with DATABASE_URL set, so that its storage tests run instead of
// skipping.
func TestStarterPostgresExampleTests(t *testing.T) {
	example := filepath.Join(starterRoot(t), "examples", "todo-postgres")
	db := starterDatabaseURL(t)
	out := starterMustCmd(t, "meshc-test", example, append(starterGoEnv(), "DATABASE_URL="+db),
		starterMeshc(t), "test", ".", "--", "-count=1", "-v")
	for _, pkg := range []string{"api", "config", "ratelimit", "storage", "work"} {
		starterContains(t, "meshc test output", out, "ok  \ttodo-postgres/"+pkg)
	}
	starterContains(t, "meshc test output", out, "--- PASS: TestCRUD", "--- PASS: TestUnmigratedSchema",
		"--- PASS: TestClearCompleted", "--- PASS: TestClearCompletedOnAPair", "--- PASS: TestClusteredOnAPair")
	starterAbsent(t, "meshc test output", out, append(starterSecrets(t, db), "--- SKIP")...)
}
