package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/arbiter"
)

// testCookie is a cluster cookie that passes the strength check.
const testCookie = "env-test-7Qm2Vx9Lr4Kc8Nw3Tb6Hp1Zs5Jd0Fg"

// envOf returns a getenv over a fixed map.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// fixedHost returns a hostname function that always answers h.
func fixedHost(h string) func() (string, error) {
	return func() (string, error) { return h, nil }
}

// cluster returns the minimal cluster environment plus extra.
func cluster(extra map[string]string) map[string]string {
	m := map[string]string{
		envClusterCookie:  testCookie,
		envDiscoverySeed:  "localhost",
		envNodeName:       "primary@127.0.0.1:4370",
		envClusterPort:    "",
		envContinuityRole: "",
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestConfigFromEnvModes(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		hostname func() (string, error)
		mode     Mode
		node     string
		nodeHost string
		port     int
		seed     string
	}{
		{name: "no env is standalone", env: nil, mode: ModeStandalone, port: 4370},
		{name: "blank values are unset", env: map[string]string{
			envClusterCookie: "  ", envDiscoverySeed: "\t", envNodeName: " ", envNodeHost: "", envClusterPort: " ",
		}, mode: ModeStandalone, port: 4370},
		{name: "standalone keeps a custom port", env: map[string]string{envClusterPort: " 5000 "},
			mode: ModeStandalone, port: 5000},
		{name: "explicit name", env: cluster(nil), mode: ModeCluster,
			node: "primary@127.0.0.1:4370", nodeHost: "127.0.0.1", port: 4370, seed: "localhost"},
		{name: "explicit IPv6 name", env: cluster(map[string]string{envNodeName: "standby@[::1]:4370"}),
			mode: ModeCluster, node: "standby@[::1]:4370", nodeHost: "::1", port: 4370, seed: "localhost"},
		{name: "explicit name and matching custom port",
			env:  cluster(map[string]string{envNodeName: "app@127.0.0.1:7000", envClusterPort: "7000"}),
			mode: ModeCluster, node: "app@127.0.0.1:7000", nodeHost: "127.0.0.1", port: 7000, seed: "localhost"},
		{name: "values are trimmed",
			env: map[string]string{envClusterCookie: " " + testCookie + " ", envDiscoverySeed: " seed.internal ",
				envNodeName: " a@h:4370 "},
			mode: ModeCluster, node: "a@h:4370", nodeHost: "h", port: 4370, seed: "seed.internal"},
		{name: "derived from hostname",
			env:      map[string]string{envClusterCookie: testCookie, envDiscoverySeed: "localhost"},
			hostname: fixedHost(" web-1 \n"),
			mode:     ModeCluster, node: "web-1@web-1:4370", nodeHost: "web-1", port: 4370, seed: "localhost"},
		{name: "derived with IPv6 MESH_NODE_HOST",
			env:      map[string]string{envClusterCookie: testCookie, envDiscoverySeed: "localhost", envNodeHost: "::1"},
			hostname: fixedHost("host"),
			mode:     ModeCluster, node: "host@[::1]:4370", nodeHost: "::1", port: 4370, seed: "localhost"},
		{name: "derived with bracketed MESH_NODE_HOST",
			env: map[string]string{envClusterCookie: testCookie, envDiscoverySeed: "localhost",
				envNodeHost: "[fd00::1]", envClusterPort: "4444"},
			hostname: fixedHost("host"),
			mode:     ModeCluster, node: "host@[fd00::1]:4444", nodeHost: "fd00::1", port: 4444, seed: "localhost"},
		{name: "derived with DNS MESH_NODE_HOST",
			env:      map[string]string{envClusterCookie: testCookie, envDiscoverySeed: "localhost", envNodeHost: "node.internal"},
			hostname: fixedHost("host"),
			mode:     ModeCluster, node: "host@node.internal:4370", nodeHost: "node.internal", port: 4370, seed: "localhost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostname := tt.hostname
			if hostname == nil {
				hostname = func() (string, error) {
					t.Error("hostname must not be called")
					return "", errors.New("unexpected")
				}
			}
			cfg, err := ConfigFromEnv(envOf(tt.env), hostname)
			if err != nil {
				t.Fatalf("ConfigFromEnv: %v", err)
			}
			if cfg.Mode != tt.mode || cfg.NodeName.String() != tt.node || cfg.NodeName.Host != tt.nodeHost ||
				cfg.ClusterPort != tt.port || cfg.DiscoverySeed != tt.seed {
				t.Errorf("got mode=%s node=%q host=%q port=%d seed=%q, want %s %q %q %d %q",
					cfg.Mode, cfg.NodeName, cfg.NodeName.Host, cfg.ClusterPort, cfg.DiscoverySeed,
					tt.mode, tt.node, tt.nodeHost, tt.port, tt.seed)
			}
			if tt.mode == ModeStandalone && (!cfg.NodeName.IsZero() || cfg.Cookie != "") {
				t.Errorf("standalone config carries identity: %+v", cfg)
			}
			if tt.mode == ModeCluster && cfg.Cookie == "" {
				t.Errorf("cluster config lost its cookie")
			}
		})
	}
}

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(envOf(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Mode:                ModeStandalone,
		ClusterPort:         4370,
		Role:                RolePrimary,
		DiscoveryInterval:   5 * time.Second,
		StartupWorkDelay:    2500 * time.Millisecond,
		HeartbeatInterval:   250 * time.Millisecond,
		PeerTimeout:         1500 * time.Millisecond,
		DiagnosticsCapacity: 128,
		RetainedRecords:     10000,
		RetainedBytes:       67108864,
		RouteTimeout:        5 * time.Second,
		RouteMaxBodyBytes:   1048576,
		WorkMaxResultBytes:  1048576,
		MaxRunningWork:      64,
	}
	if cfg != want {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
}

func TestConfigFromEnvKnobs(t *testing.T) {
	env := cluster(map[string]string{
		envContinuityRole:    " standby ",
		envPromotionEpoch:    " 18446744073709551615 ",
		envDiscoveryInterval: "100",
		envStartupWorkDelay:  "1",
		envHeartbeatInterval: "50",
		envPeerTimeout:       "51",
		envDiagnosticsCap:    "7",
		envRetainRecords:     "9",
		envRetainBytes:       " 65536 ",
		envRouteTimeout:      "1234",
		envRouteMaxBody:      "4096",
		envWorkMaxResult:     "2048",
		envMaxRunningWork:    " 3 ",
		envStateDir:          " /var/lib/mesh ",
		envLogFormat:         " json ",
		envMinProtocol:       " 4 ",
	})
	cfg, err := ConfigFromEnv(envOf(env), nil)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Role", cfg.Role, RoleStandby},
		{"Epoch", cfg.Epoch, uint64(18446744073709551615)},
		{"DiscoveryInterval", cfg.DiscoveryInterval, 100 * time.Millisecond},
		{"StartupWorkDelay", cfg.StartupWorkDelay, time.Millisecond},
		{"HeartbeatInterval", cfg.HeartbeatInterval, 50 * time.Millisecond},
		{"PeerTimeout", cfg.PeerTimeout, 51 * time.Millisecond},
		{"DiagnosticsCapacity", cfg.DiagnosticsCapacity, 7},
		{"RetainedRecords", cfg.RetainedRecords, 9},
		{"RetainedBytes", cfg.RetainedBytes, int64(65536)},
		{"RouteTimeout", cfg.RouteTimeout, 1234 * time.Millisecond},
		{"RouteMaxBodyBytes", cfg.RouteMaxBodyBytes, int64(4096)},
		{"WorkMaxResultBytes", cfg.WorkMaxResultBytes, int64(2048)},
		{"MaxRunningWork", cfg.MaxRunningWork, 3},
		{"StateDir", cfg.StateDir, "/var/lib/mesh"},
		{"LogFormat", cfg.LogFormat, LogFormatJSON},
		{"MinProtocolVersion", cfg.MinProtocolVersion, 4},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	for _, role := range []string{"", "primary", " primary"} {
		cfg, err := ConfigFromEnv(envOf(cluster(map[string]string{envContinuityRole: role})), nil)
		if err != nil || cfg.Role != RolePrimary {
			t.Errorf("role %q: got %q, %v; want primary", role, cfg.Role, err)
		}
	}
}

func TestConfigFromEnvErrors(t *testing.T) {
	const cookieRequired = "MESH_CLUSTER_COOKIE is required when discovery or identity env is set"
	const missingSeed = "Missing required environment variable MESH_DISCOVERY_SEED"
	const badPort = "Invalid MESH_CLUSTER_PORT: expected a positive integer"
	noHost := func() (string, error) { return "", errors.New("uname failed") }

	tests := []struct {
		name     string
		env      map[string]string
		hostname func() (string, error)
		want     string
	}{
		// Port, checked before the mode.
		{"port not a number", map[string]string{envClusterPort: "abc"}, nil, badPort},
		{"port zero", map[string]string{envClusterPort: "0"}, nil, badPort},
		{"port negative", map[string]string{envClusterPort: "-1"}, nil, badPort},
		{"port signed", map[string]string{envClusterPort: "+80"}, nil, badPort},
		{"port too large", map[string]string{envClusterPort: "65536"}, nil, badPort},
		{"port in cluster mode", cluster(map[string]string{envClusterPort: "x"}), nil, badPort},

		// Mode.
		{"name and seed without cookie",
			map[string]string{envNodeName: "primary@127.0.0.1:4370", envDiscoverySeed: "localhost"}, nil, cookieRequired},
		{"seed without cookie", map[string]string{envDiscoverySeed: "localhost", envNodeHost: "h"},
			fixedHost("h"), cookieRequired},
		{"host hint without cookie", map[string]string{envNodeHost: "10.0.0.1", envDiscoverySeed: "s"},
			fixedHost("h"), cookieRequired},
		{"cookie without seed", map[string]string{envClusterCookie: testCookie, envNodeName: "a@h:4370"}, nil, missingSeed},
		{"blank seed", cluster(map[string]string{envDiscoverySeed: "  "}), nil, missingSeed},

		// Explicit node name, one row per reason.
		{"name with space", cluster(map[string]string{envNodeName: "a b@h:4370"}), nil,
			"Invalid MESH_NODE_NAME: value cannot contain spaces"},
		{"name without @", cluster(map[string]string{envNodeName: "primary"}), nil,
			"Invalid MESH_NODE_NAME: expected name@host:port"},
		{"name with two @", cluster(map[string]string{envNodeName: "a@b@h:4370"}), nil,
			"Invalid MESH_NODE_NAME: expected name@host:port"},
		{"blank name part", cluster(map[string]string{envNodeName: "@h:4370"}), nil,
			"Invalid MESH_NODE_NAME: node name cannot be blank"},
		{"blank host part", cluster(map[string]string{envNodeName: "a@"}), nil,
			"Invalid MESH_NODE_NAME: host cannot be blank"},
		{"blank host before port", cluster(map[string]string{envNodeName: "a@:4370"}), nil,
			"Invalid MESH_NODE_NAME: host cannot be blank"},
		{"bracket without ]:", cluster(map[string]string{envNodeName: "a@[::1]"}), nil,
			"Invalid MESH_NODE_NAME: IPv6 host must use [addr]:port"},
		{"empty brackets", cluster(map[string]string{envNodeName: "a@[]:4370"}), nil,
			"Invalid MESH_NODE_NAME: host cannot be blank"},
		{"stray bracket", cluster(map[string]string{envNodeName: "a@h]:4370"}), nil,
			"Invalid MESH_NODE_NAME: host is invalid"},
		{"raw IPv6", cluster(map[string]string{envNodeName: "a@::1:4370"}), nil,
			"Invalid MESH_NODE_NAME: expected name@host:port"},
		{"no port", cluster(map[string]string{envNodeName: "a@h"}), nil,
			"Invalid MESH_NODE_NAME: expected name@host:port"},
		{"port not a number", cluster(map[string]string{envNodeName: "a@h:x"}), nil,
			"Invalid MESH_NODE_NAME: port must be a positive integer"},
		{"port zero", cluster(map[string]string{envNodeName: "a@h:0"}), nil,
			"Invalid MESH_NODE_NAME: port must be a positive integer"},
		{"port mismatch", cluster(map[string]string{envNodeName: "a@h:5000"}), nil,
			"Invalid MESH_NODE_NAME: port must match MESH_CLUSTER_PORT"},
		{"port mismatch custom", cluster(map[string]string{envNodeName: "a@[::1]:4370", envClusterPort: "5000"}), nil,
			"Invalid MESH_NODE_NAME: port must match MESH_CLUSTER_PORT"},

		// Derived identity.
		{"hostname fails", cluster(map[string]string{envNodeName: ""}), noHost,
			"Invalid cluster identity: failed to read system hostname: uname failed"},
		{"hostname not UTF-8", cluster(map[string]string{envNodeName: ""}), fixedHost("h\xff"),
			"Invalid cluster identity: system hostname is not valid UTF-8"},
		{"hostname blank", cluster(map[string]string{envNodeName: ""}), fixedHost(" "),
			"Invalid cluster identity: system hostname is blank"},
		{"hostname with @", cluster(map[string]string{envNodeName: ""}), fixedHost("a@b"),
			"Invalid cluster identity: system hostname contains invalid characters"},
		{"hostname with space", cluster(map[string]string{envNodeName: ""}), fixedHost("a b"),
			"Invalid cluster identity: system hostname contains invalid characters"},
		{"host with @", cluster(map[string]string{envNodeName: "", envNodeHost: "a@b"}), fixedHost("h"),
			"Invalid cluster identity: advertised host cannot contain @"},
		{"host with space", cluster(map[string]string{envNodeName: "", envNodeHost: "a b"}), fixedHost("h"),
			"Invalid cluster identity: advertised host cannot contain spaces"},
		{"host opening bracket", cluster(map[string]string{envNodeName: "", envNodeHost: "[::1"}), fixedHost("h"),
			"Invalid cluster identity: advertised host has an opening '[' without a closing ']'"},
		{"host closing bracket", cluster(map[string]string{envNodeName: "", envNodeHost: "::1]"}), fixedHost("h"),
			"Invalid cluster identity: advertised host has a closing ']' without an opening '['"},
		{"host empty brackets", cluster(map[string]string{envNodeName: "", envNodeHost: "[]"}), fixedHost("h"),
			"Invalid cluster identity: advertised host cannot be blank"},
		{"host inner bracket", cluster(map[string]string{envNodeName: "", envNodeHost: "[a]b]"}), fixedHost("h"),
			"Invalid cluster identity: advertised host is invalid"},
		{"hostname with brackets", cluster(map[string]string{envNodeName: ""}), fixedHost("[x"),
			"Invalid cluster identity: advertised host has an opening '[' without a closing ']'"},

		// Role and epoch: no silent fallback.
		{"role leader", cluster(map[string]string{envContinuityRole: "leader"}), nil,
			`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "leader"`},
		{"role case", cluster(map[string]string{envContinuityRole: " Standby "}), nil,
			`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "Standby"`},
		{"role standalone", map[string]string{envContinuityRole: "boss"}, nil,
			`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "boss"`},
		{"epoch text", cluster(map[string]string{envPromotionEpoch: "abc"}), nil,
			`Invalid MESH_CONTINUITY_PROMOTION_EPOCH: expected an unsigned integer, got "abc"`},
		{"epoch negative", cluster(map[string]string{envPromotionEpoch: "-1"}), nil,
			`Invalid MESH_CONTINUITY_PROMOTION_EPOCH: expected an unsigned integer, got "-1"`},
		{"epoch overflow", cluster(map[string]string{envPromotionEpoch: "18446744073709551616"}), nil,
			`Invalid MESH_CONTINUITY_PROMOTION_EPOCH: expected an unsigned integer, got "18446744073709551616"`},

		// Timing and bound knobs.
		{"discovery interval zero", map[string]string{envDiscoveryInterval: "0"}, nil,
			"Invalid MESH_DISCOVERY_INTERVAL_MS: expected a positive integer"},
		{"startup delay text", map[string]string{envStartupWorkDelay: "soon"}, nil,
			"Invalid MESH_STARTUP_WORK_DELAY_MS: expected a positive integer"},
		{"startup delay negative", map[string]string{envStartupWorkDelay: "-5"}, nil,
			"Invalid MESH_STARTUP_WORK_DELAY_MS: expected a positive integer"},
		{"heartbeat fraction", map[string]string{envHeartbeatInterval: "1.5"}, nil,
			"Invalid MESH_HEARTBEAT_INTERVAL_MS: expected a positive integer"},
		{"peer timeout zero", map[string]string{envPeerTimeout: "0"}, nil,
			"Invalid MESH_PEER_TIMEOUT_MS: expected a positive integer"},
		{"peer timeout equal to heartbeat", map[string]string{envPeerTimeout: "250"}, nil,
			"Invalid MESH_PEER_TIMEOUT_MS: peer timeout 250ms must be greater than MESH_HEARTBEAT_INTERVAL_MS 250ms"},
		{"heartbeat above default peer timeout", map[string]string{envHeartbeatInterval: "2000"}, nil,
			"Invalid MESH_PEER_TIMEOUT_MS: peer timeout 1500ms must be greater than MESH_HEARTBEAT_INTERVAL_MS 2000ms"},
		{"diagnostics capacity", map[string]string{envDiagnosticsCap: "x"}, nil,
			"Invalid MESH_DIAGNOSTICS_CAPACITY: expected a positive integer"},
		{"retained records", map[string]string{envRetainRecords: "0"}, nil,
			"Invalid MESH_CONTINUITY_RETAIN_RECORDS: expected a positive integer"},
		{"retained bytes", map[string]string{envRetainBytes: "64MiB"}, nil,
			"Invalid MESH_CONTINUITY_RETAIN_BYTES: expected a positive integer"},
		{"retained bytes zero", map[string]string{envRetainBytes: "0"}, nil,
			"Invalid MESH_CONTINUITY_RETAIN_BYTES: expected a positive integer"},
		{"route timeout", map[string]string{envRouteTimeout: "1s"}, nil,
			"Invalid MESH_ROUTE_TIMEOUT_MS: expected a positive integer"},
		{"route max body", map[string]string{envRouteMaxBody: "10MB"}, nil,
			"Invalid MESH_ROUTE_MAX_BODY_BYTES: expected a positive integer"},
		{"log format", map[string]string{envLogFormat: "JSON"}, nil,
			`Invalid MESH_LOG_FORMAT: expected text or json, got "JSON"`},
		{"duration overflow", map[string]string{envRouteTimeout: "9223372036855"}, nil,
			"Invalid MESH_ROUTE_TIMEOUT_MS: expected a positive integer no greater than 9223372036854"},
		{"work result bound above the wire limit", map[string]string{envWorkMaxResult: "4194305"}, nil,
			"Invalid MESH_WORK_MAX_RESULT_BYTES: expected a positive integer no greater than 4194304"},
		{"work result bound zero", map[string]string{envWorkMaxResult: "0"}, nil,
			"Invalid MESH_WORK_MAX_RESULT_BYTES: expected a positive integer"},
		{"running work zero", map[string]string{envMaxRunningWork: "0"}, nil,
			"Invalid MESH_MAX_RUNNING_WORK: expected a positive integer"},
		{"running work above the bound", map[string]string{envMaxRunningWork: "65537"}, nil,
			"Invalid MESH_MAX_RUNNING_WORK: expected a positive integer no greater than 65536"},
		{"running work not a number", map[string]string{envMaxRunningWork: "lots"}, nil,
			"Invalid MESH_MAX_RUNNING_WORK: expected a positive integer"},
		{"min protocol below the oldest", map[string]string{envMinProtocol: "2"}, nil,
			"Invalid MESH_CLUSTER_MIN_PROTOCOL: expected a protocol version from 3 to 4"},
		{"min protocol above the newest", map[string]string{envMinProtocol: "5"}, nil,
			"Invalid MESH_CLUSTER_MIN_PROTOCOL: expected a protocol version from 3 to 4"},
		{"min protocol not a number", map[string]string{envMinProtocol: "v4"}, nil,
			"Invalid MESH_CLUSTER_MIN_PROTOCOL: expected a protocol version from 3 to 4"},
		{"count overflow", map[string]string{envRouteMaxBody: "99999999999999999999"}, nil,
			"Invalid MESH_ROUTE_MAX_BODY_BYTES: expected a positive integer no greater than 9223372036854775807"},

		// Encoding.
		{"seed not UTF-8", map[string]string{envDiscoverySeed: "\xfe"}, nil,
			"MESH_DISCOVERY_SEED must be valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostname := tt.hostname
			if hostname == nil {
				hostname = fixedHost("unused")
			}
			cfg, err := ConfigFromEnv(envOf(tt.env), hostname)
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %q\nwant %q", err, tt.want)
			}
			if cfg != (Config{}) {
				t.Errorf("config on error is not zero: %+v", cfg)
			}
		})
	}
}

func TestConfigFromEnvReportsEverythingInOrder(t *testing.T) {
	env := map[string]string{
		envClusterPort:       "99999",
		envNodeName:          "a@h:4370 x",
		envContinuityRole:    "leader",
		envPromotionEpoch:    "-1",
		envDiscoveryInterval: "0",
		envRouteMaxBody:      "big",
	}
	_, err := ConfigFromEnv(envOf(env), nil)
	want := []string{
		"Invalid MESH_CLUSTER_PORT: expected a positive integer",
		"MESH_CLUSTER_COOKIE is required when discovery or identity env is set",
		"Missing required environment variable MESH_DISCOVERY_SEED",
		"Invalid MESH_NODE_NAME: value cannot contain spaces",
		`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "leader"`,
		`Invalid MESH_CONTINUITY_PROMOTION_EPOCH: expected an unsigned integer, got "-1"`,
		"Invalid MESH_DISCOVERY_INTERVAL_MS: expected a positive integer",
		"Invalid MESH_ROUTE_MAX_BODY_BYTES: expected a positive integer",
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	// The joined error keeps each problem inspectable.
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
		t.Errorf("error is not a join of %d problems: %#v", len(want), err)
	}
}

func TestConfigFromEnvNeverLeaksCookie(t *testing.T) {
	const secret = "vErY-hidden-value-9Xk2Lm7Qp4Rz8Tn3Wc"
	envs := []map[string]string{
		{envClusterCookie: secret},
		{envClusterCookie: secret, envDiscoverySeed: "s", envNodeName: secret},
		{envClusterCookie: secret, envDiscoverySeed: "s", envNodeName: "a@" + secret},
		{envClusterCookie: secret, envClusterPort: secret, envContinuityRole: "x", envPeerTimeout: "1"},
		{envClusterCookie: secret + "\xff"},
	}
	for _, env := range envs {
		cfg, err := ConfigFromEnv(envOf(env), fixedHost("h"))
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks the cookie: %v", err)
		}
		if err == nil {
			t.Errorf("env %v: expected an error, got %+v", env, cfg)
		}
	}
	cfg, err := ConfigFromEnv(envOf(cluster(map[string]string{envClusterCookie: secret})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Cookie) != secret {
		t.Errorf("cookie not kept")
	}
}

func TestConfigFromEnvRefusesWeakCookies(t *testing.T) {
	tests := []struct {
		name, cookie, want string
	}{
		{"one character", "c", "at least 32 characters"},
		{"short", "s3cret-cookie", "at least 32 characters"},
		{"placeholder", "change-me-in-production-0123456789abcdef", "known placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envOf(cluster(map[string]string{envClusterCookie: tt.cookie})), nil)
			if err == nil {
				t.Fatal("ConfigFromEnv accepted a weak cookie")
			}
			want := "Invalid MESH_CLUSTER_COOKIE: it "
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "`meshc cluster cookie`") {
				t.Fatalf("error %q: want %q..., %q and the remedy `meshc cluster cookie`", err, want, tt.want)
			}
			if len(tt.cookie) > 4 && strings.Contains(err.Error(), tt.cookie) {
				t.Fatalf("error leaks the cookie: %v", err)
			}
		})
	}
}

func TestConfigFromEnvCookieFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	private := write("cookie", testCookie+"\n", 0o600)
	fileEnv := func(path string) map[string]string {
		m := cluster(map[string]string{envClusterCookieFile: path})
		delete(m, envClusterCookie)
		return m
	}

	cfg, err := ConfigFromEnv(envOf(fileEnv(private)), nil)
	if err != nil {
		t.Fatalf("ConfigFromEnv with a private cookie file: %v", err)
	}
	if string(cfg.Cookie) != testCookie || cfg.Mode != ModeCluster {
		t.Fatalf("cookie file not read: mode %s", cfg.Mode)
	}

	refused := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"both set", cluster(map[string]string{envClusterCookieFile: private}),
			"set only one of MESH_CLUSTER_COOKIE and MESH_CLUSTER_COOKIE_FILE"},
		{"group readable", fileEnv(write("group", testCookie, 0o640)),
			"Invalid MESH_CLUSTER_COOKIE_FILE: " + filepath.Join(dir, "group") + " is readable or writable by other users (mode 0640)"},
		{"world readable", fileEnv(write("world", testCookie, 0o644)), "mode 0644"},
		{"weak", fileEnv(write("weak", "short", 0o600)),
			"Invalid MESH_CLUSTER_COOKIE_FILE: it must be at least 32 characters long"},
		{"missing", fileEnv(filepath.Join(dir, "nope")), "Invalid MESH_CLUSTER_COOKIE_FILE: open "},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ConfigFromEnv(envOf(tt.env), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), testCookie) {
				t.Fatalf("error leaks the cookie: %v", err)
			}
		})
	}
}

func TestStartRefusesWeakCookie(t *testing.T) {
	_, err := Start(Config{Mode: ModeCluster, Cookie: "short", DiscoverySeed: "localhost",
		NodeName: NodeName{Name: "a", Host: "127.0.0.1", Port: 1}, StateDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "meshc cluster cookie") {
		t.Fatalf("Start with a short cookie: %v; want a refusal naming `meshc cluster cookie`", err)
	}
}

// MESH_ARBITER: unset and peer select the two-node rule; a postgres://
// value selects the lease arbiter on a cluster node and is refused on a
// standalone one, and so does an etcd:// value; a malformed value gets
// ParseSpec's reason; no error shows the connection string's credentials.
func TestConfigFromEnvArbiter(t *testing.T) {
	const standalone = "needs a cluster node (set MESH_CLUSTER_COOKIE); a standalone node has no standby to hand over to"
	for _, tt := range []struct {
		name, value string
		want        map[string]string // by mode: the error, "" when accepted
		arbiter     ArbiterDSN        // Config.Arbiter when accepted in cluster mode
	}{
		{"unset", "", nil, ""},
		{"peer", " peer ", nil, ""},
		{"postgres", "postgres://mesh:s3cret@db.internal:5432/mesh?sslmode=require",
			map[string]string{"standalone": "Invalid MESH_ARBITER: postgres arbiter (postgres://db.internal:5432) " + standalone},
			"postgres://mesh:s3cret@db.internal:5432/mesh?sslmode=require"},
		{"postgresql", "postgresql://mesh:s3cret@db:5432/mesh",
			map[string]string{"standalone": "Invalid MESH_ARBITER: postgres arbiter (postgresql://db:5432) " + standalone},
			"postgresql://mesh:s3cret@db:5432/mesh"},
		{"etcd", "etcd://10.0.0.1:2379,10.0.0.2:2379",
			map[string]string{"standalone": "Invalid MESH_ARBITER: etcd arbiter (etcd://10.0.0.1:2379,10.0.0.2:2379) " + standalone},
			"etcd://10.0.0.1:2379,10.0.0.2:2379"},
		{"etcd credentials", "etcd://root:s3cret@10.0.0.1:2379",
			map[string]string{"standalone": "Invalid MESH_ARBITER: etcd arbiter (etcd://10.0.0.1:2379) " + standalone},
			"etcd://root:s3cret@10.0.0.1:2379"},
		{"etcd user without password", "etcd://root@10.0.0.1:2379", map[string]string{
			"standalone": "Invalid MESH_ARBITER: etcd credentials must be user:password, percent-encoded (not shown)",
			"cluster":    "Invalid MESH_ARBITER: etcd credentials must be user:password, percent-encoded (not shown)"}, ""},
		{"etcd path", "etcd://root:s3cret@10.0.0.1:2379/x", map[string]string{
			"standalone": "Invalid MESH_ARBITER: expected etcd://[user:password@]host:port[,host:port] with nothing else (no path or parameters)",
			"cluster":    "Invalid MESH_ARBITER: expected etcd://[user:password@]host:port[,host:port] with nothing else (no path or parameters)"}, ""},
		{"unknown", "raft", map[string]string{
			"standalone": `Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got "raft"`,
			"cluster":    `Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got "raft"`}, ""},
		{"keyword form", "host=db password=s3cret", map[string]string{
			"standalone": "Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got a value that is none of them (not shown: it may hold credentials)",
			"cluster":    "Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got a value that is none of them (not shown: it may hold credentials)"}, ""},
	} {
		for _, mode := range []string{"standalone", "cluster"} {
			t.Run(tt.name+"/"+mode, func(t *testing.T) {
				env := map[string]string{envArbiter: tt.value}
				if mode == "cluster" {
					env = cluster(env)
				}
				cfg, err := ConfigFromEnv(envOf(env), fixedHost("h"))
				want := tt.want[mode]
				if want == "" {
					if err != nil {
						t.Fatalf("refused: %v", err)
					}
					if mode == "cluster" && cfg.Arbiter != tt.arbiter {
						t.Fatalf("Config.Arbiter %v, want %v", cfg.Arbiter, tt.arbiter)
					}
					if err := cfg.Validate(); err != nil {
						t.Fatalf("ConfigFromEnv's Config fails Validate: %v", err)
					}
					return
				}
				if err == nil || err.Error() != want {
					t.Fatalf("error:\n got %v\nwant %q", err, want)
				}
				if strings.Contains(err.Error(), "s3cret") || cfg != (Config{}) {
					t.Fatalf("error shows credentials or config not zero: %v, %+v", err, cfg)
				}
			})
		}
	}
}

// Config.Arbiter prints, logs and marshals without its credentials, and
// Validate gives the environment's messages for it.
func TestConfigArbiterRedactedAndValidated(t *testing.T) {
	d := ArbiterDSN("postgres://mesh:s3cret@db:5432/mesh")
	js, _ := json.Marshal(struct{ A ArbiterDSN }{d})
	for _, got := range []string{d.String(), fmt.Sprintf("%v %+v %#v", d, d, d), string(js), fmt.Sprintf("%+v", Config{Arbiter: d})} {
		if strings.Contains(got, "s3cret") || strings.Contains(got, "mesh:") {
			t.Fatalf("arbiter shown with credentials: %s", got)
		}
	}
	c := Config{Arbiter: d}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "needs a cluster node") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("standalone Config with a postgres arbiter: %v", err)
	}
	c = testConfig(t, "a", "127.0.0.1", 4370, RolePrimary)
	c.Arbiter = "etcd://127.0.0.1:2379"
	if err := c.Validate(); err != nil {
		t.Fatalf("cluster Config with an etcd arbiter: %v", err)
	}
	c.Arbiter = "etcd://root:s3cret@127.0.0.1:2379"
	if err := c.Validate(); err != nil {
		t.Fatalf("cluster Config with an etcd arbiter with credentials: %v", err)
	}
	e := c.Arbiter
	js, _ = json.Marshal(struct{ A ArbiterDSN }{e})
	for _, got := range []string{e.String(), fmt.Sprintf("%v %+v %#v", e, e, e), string(js), fmt.Sprintf("%+v", c)} {
		if strings.Contains(got, "s3cret") || strings.Contains(got, "root:") {
			t.Fatalf("etcd arbiter shown with credentials: %s", got)
		}
	}
	c.Arbiter = d
	if err := c.Validate(); err != nil {
		t.Fatalf("cluster Config with a postgres arbiter: %v", err)
	}
}

func TestArbiterEnvName(t *testing.T) {
	if envArbiter != arbiter.EnvVar {
		t.Fatalf("envArbiter = %q, the arbiter package reads %q", envArbiter, arbiter.EnvVar)
	}
}
