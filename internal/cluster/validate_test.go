package cluster

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// validCluster returns a valid cluster Config on port 4370 changed by edit.
func validCluster(edit func(*Config)) Config {
	c := Config{Cookie: testCookie, DiscoverySeed: "localhost",
		NodeName: NodeName{Name: "primary", Host: "127.0.0.1", Port: DefaultClusterPort}}
	if edit != nil {
		edit(&c)
	}
	return c
}

// configRules pairs each Validate rule with the environment that breaks the
// same rule, so both paths must give the same message.
var configRules = []struct {
	name string
	cfg  Config
	env  map[string]string // nil: the rule has no environment counterpart
	want string
}{
	{"port negative", Config{ClusterPort: -1}, map[string]string{envClusterPort: "-1"},
		"Invalid MESH_CLUSTER_PORT: expected a positive integer"},
	{"port too large", Config{ClusterPort: 65536}, map[string]string{envClusterPort: "65536"},
		"Invalid MESH_CLUSTER_PORT: expected a positive integer"},
	{"seed without cookie", Config{DiscoverySeed: "localhost", NodeName: NodeName{Name: "a", Host: "h", Port: 4370}},
		map[string]string{envDiscoverySeed: "localhost", envNodeName: "a@h:4370"},
		"MESH_CLUSTER_COOKIE is required when discovery or identity env is set"},
	{"weak cookie", validCluster(func(c *Config) { c.Cookie = "short" }),
		cluster(map[string]string{envClusterCookie: "short"}),
		"Invalid MESH_CLUSTER_COOKIE: it must be at least 32 characters long; generate a random cookie with `meshc cluster cookie`"},
	{"placeholder cookie", validCluster(func(c *Config) { c.Cookie = "change-me-in-production-0123456789abcdef" }),
		cluster(map[string]string{envClusterCookie: "change-me-in-production-0123456789abcdef"}),
		"Invalid MESH_CLUSTER_COOKIE: it is a known placeholder value; generate a random cookie with `meshc cluster cookie`"},
	{"seed missing", validCluster(func(c *Config) { c.DiscoverySeed = "" }),
		cluster(map[string]string{envDiscoverySeed: ""}),
		"Missing required environment variable MESH_DISCOVERY_SEED"},
	{"node name blank", validCluster(func(c *Config) { c.NodeName.Name = "" }),
		cluster(map[string]string{envNodeName: "@127.0.0.1:4370"}),
		"Invalid MESH_NODE_NAME: node name cannot be blank"},
	{"node name missing", validCluster(func(c *Config) { c.NodeName = NodeName{} }), nil,
		"Invalid MESH_NODE_NAME: node name cannot be blank"},
	{"node name with space", validCluster(func(c *Config) { c.NodeName.Name = "a b" }),
		cluster(map[string]string{envNodeName: "a b@127.0.0.1:4370"}),
		"Invalid MESH_NODE_NAME: value cannot contain spaces"},
	{"node host blank", validCluster(func(c *Config) { c.NodeName.Host = "" }),
		cluster(map[string]string{envNodeName: "a@:4370"}),
		"Invalid MESH_NODE_NAME: host cannot be blank"},
	{"node host bracketed", validCluster(func(c *Config) { c.NodeName.Host = "[::1]" }),
		cluster(map[string]string{envNodeName: "a@[[::1]]:4370"}),
		"Invalid MESH_NODE_NAME: host is invalid"},
	{"node port zero", validCluster(func(c *Config) { c.NodeName.Port = 0 }),
		cluster(map[string]string{envNodeName: "a@h:0"}),
		"Invalid MESH_NODE_NAME: port must be a positive integer"},
	{"node port mismatch", validCluster(func(c *Config) { c.NodeName.Port = 5000 }),
		cluster(map[string]string{envNodeName: "a@h:5000"}),
		"Invalid MESH_NODE_NAME: port must match MESH_CLUSTER_PORT"},
	{"role", Config{Role: "leader"}, map[string]string{envContinuityRole: "leader"},
		`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "leader"`},
	{"discovery interval", Config{DiscoveryInterval: -time.Second}, map[string]string{envDiscoveryInterval: "-1000"},
		"Invalid MESH_DISCOVERY_INTERVAL_MS: expected a positive integer"},
	{"startup delay", Config{StartupWorkDelay: -1}, map[string]string{envStartupWorkDelay: "-5"},
		"Invalid MESH_STARTUP_WORK_DELAY_MS: expected a positive integer"},
	{"heartbeat", Config{HeartbeatInterval: -1}, map[string]string{envHeartbeatInterval: "-1"},
		"Invalid MESH_HEARTBEAT_INTERVAL_MS: expected a positive integer"},
	{"peer timeout", Config{PeerTimeout: -1}, map[string]string{envPeerTimeout: "-1"},
		"Invalid MESH_PEER_TIMEOUT_MS: expected a positive integer"},
	{"peer timeout equal to heartbeat", Config{PeerTimeout: 250 * time.Millisecond},
		map[string]string{envPeerTimeout: "250"},
		"Invalid MESH_PEER_TIMEOUT_MS: peer timeout 250ms must be greater than MESH_HEARTBEAT_INTERVAL_MS 250ms"},
	{"heartbeat above default peer timeout", Config{HeartbeatInterval: 2 * time.Second},
		map[string]string{envHeartbeatInterval: "2000"},
		"Invalid MESH_PEER_TIMEOUT_MS: peer timeout 1500ms must be greater than MESH_HEARTBEAT_INTERVAL_MS 2000ms"},
	{"diagnostics capacity", Config{DiagnosticsCapacity: -1}, map[string]string{envDiagnosticsCap: "-1"},
		"Invalid MESH_DIAGNOSTICS_CAPACITY: expected a positive integer"},
	{"retained records", Config{RetainedRecords: -1}, map[string]string{envRetainRecords: "-1"},
		"Invalid MESH_CONTINUITY_RETAIN_RECORDS: expected a positive integer"},
	{"retained bytes", Config{RetainedBytes: -1}, map[string]string{envRetainBytes: "-1"},
		"Invalid MESH_CONTINUITY_RETAIN_BYTES: expected a positive integer"},
	{"route timeout", Config{RouteTimeout: -time.Millisecond}, map[string]string{envRouteTimeout: "-1"},
		"Invalid MESH_ROUTE_TIMEOUT_MS: expected a positive integer"},
	{"route max body", Config{RouteMaxBodyBytes: -1}, map[string]string{envRouteMaxBody: "-1"},
		"Invalid MESH_ROUTE_MAX_BODY_BYTES: expected a positive integer"},
	{"max running work", Config{MaxRunningWork: -1}, map[string]string{envMaxRunningWork: "-1"},
		"Invalid MESH_MAX_RUNNING_WORK: expected a positive integer"},
	{"max running work above the bound", Config{MaxRunningWork: 65537}, map[string]string{envMaxRunningWork: "65537"},
		"Invalid MESH_MAX_RUNNING_WORK: expected a positive integer no greater than 65536"},
	{"log format", Config{LogFormat: "xml"}, map[string]string{envLogFormat: "xml"},
		`Invalid MESH_LOG_FORMAT: expected text or json, got "xml"`},
	{"min protocol", Config{MinProtocolVersion: 5}, map[string]string{envMinProtocol: "5"},
		"Invalid MESH_CLUSTER_MIN_PROTOCOL: expected a protocol version from 3 to 4"},

	// Rules of the Mode field, which the environment cannot express.
	{"cluster mode without cookie", Config{Mode: ModeCluster, DiscoverySeed: "localhost",
		NodeName: NodeName{Name: "a", Host: "h", Port: 4370}}, nil,
		"MESH_CLUSTER_COOKIE is required when discovery or identity env is set"},
	{"standalone mode with cookie", validCluster(func(c *Config) { c.Mode = ModeStandalone }), nil,
		"Invalid Config.Mode: a cluster cookie makes the node a cluster node, not standalone"},
	{"unknown mode", Config{Mode: "solo"}, nil,
		`Invalid Config.Mode: expected "standalone" or "cluster", got "solo"`},
}

func TestConfigValidateRules(t *testing.T) {
	for _, tt := range configRules {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate:\n got %v\nwant %q", err, tt.want)
			}
			if tt.env == nil {
				return
			}
			_, envErr := ConfigFromEnv(envOf(tt.env), fixedHost("unused"))
			if envErr == nil || envErr.Error() != tt.want {
				t.Fatalf("ConfigFromEnv gives another message for the same rule:\n got %v\nwant %q", envErr, tt.want)
			}
		})
	}
}

func TestStartReturnsValidateError(t *testing.T) {
	for _, tt := range configRules {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.StateDir = t.TempDir()
			n, err := Start(cfg)
			if err == nil {
				n.Shutdown(t.Context())
				t.Fatal("Start accepted an invalid Config")
			}
			if err.Error() != tt.want {
				t.Fatalf("Start:\n got %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestConfigValidateReportsEverythingInOrder(t *testing.T) {
	cfg := Config{
		ClusterPort:       70000,
		NodeName:          NodeName{Name: "a b", Host: "h", Port: 4370},
		Role:              "leader",
		DiscoveryInterval: -1,
		RouteMaxBodyBytes: -1,
	}
	want := []string{
		"Invalid MESH_CLUSTER_PORT: expected a positive integer",
		"MESH_CLUSTER_COOKIE is required when discovery or identity env is set",
		"Missing required environment variable MESH_DISCOVERY_SEED",
		"Invalid MESH_NODE_NAME: value cannot contain spaces",
		`Invalid MESH_CONTINUITY_ROLE: expected primary or standby, got "leader"`,
		"Invalid MESH_DISCOVERY_INTERVAL_MS: expected a positive integer",
		"Invalid MESH_ROUTE_MAX_BODY_BYTES: expected a positive integer",
	}
	err := cfg.Validate()
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Fatalf("error:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != len(want) {
		t.Errorf("error is not a join of %d problems: %#v", len(want), err)
	}
	_, startErr := Start(cfg)
	if startErr == nil || startErr.Error() != err.Error() {
		t.Errorf("Start error:\n%v\nwant the Validate error:\n%v", startErr, err)
	}
}

func TestConfigValidateAcceptsEnvConfigs(t *testing.T) {
	envs := []struct {
		env      map[string]string
		hostname func() (string, error)
	}{
		{nil, nil},
		{map[string]string{envClusterPort: "5000", envContinuityRole: "standby"}, nil},
		{cluster(nil), nil},
		{cluster(map[string]string{envNodeName: "standby@[::1]:4370"}), nil},
		{cluster(map[string]string{envNodeName: "", envNodeHost: "::1"}), fixedHost("host")},
		{cluster(map[string]string{envNodeName: "", envNodeHost: "[fd00::1]", envClusterPort: "4444"}), fixedHost("h:x")},
		{cluster(map[string]string{envHeartbeatInterval: "50", envPeerTimeout: "51", envPromotionEpoch: "7"}), nil},
	}
	for _, e := range envs {
		hostname := e.hostname
		if hostname == nil {
			hostname = fixedHost("unused")
		}
		cfg, err := ConfigFromEnv(envOf(e.env), hostname)
		if err != nil {
			t.Fatalf("env %v: %v", e.env, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("env %v: Validate refuses what ConfigFromEnv built: %v", e.env, err)
		}
		if cfg.Mode != cfg.mode() {
			t.Errorf("env %v: Mode %q, cookie says %q", e.env, cfg.Mode, cfg.mode())
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the zero Config is invalid: %v", err)
	}
	if err := validCluster(func(c *Config) { c.Mode = ModeCluster; c.Role = RoleStandby }).Validate(); err != nil {
		t.Errorf("a cluster Config with a matching Mode is invalid: %v", err)
	}
}

func TestConfigValidateNeverLeaksCookie(t *testing.T) {
	const secret = "vErY-hidden-value-9Xk2Lm7Qp4Rz8Tn3Wc"
	cfgs := []Config{
		{Cookie: secret, Mode: ModeStandalone, ClusterPort: -1},
		validCluster(func(c *Config) { c.Cookie = secret; c.NodeName.Name = secret + " x"; c.DiscoverySeed = "" }),
		validCluster(func(c *Config) { c.Cookie = Cookie(secret[:10]) }),
	}
	for _, c := range cfgs {
		err := c.Validate()
		if err == nil {
			t.Fatalf("expected an error")
		}
		if strings.Contains(err.Error(), secret[:10]) {
			t.Errorf("error leaks the cookie: %v", err)
		}
	}
}

// TestModeFollowsCookie checks that the mode in effect comes from the cookie:
// a Config that leaves Mode zero but carries a cookie starts a cluster node.
func TestModeFollowsCookie(t *testing.T) {
	port := freePort(t)
	cfg := testConfig(t, "alone", "127.0.0.1", port, RolePrimary)
	cfg.Mode = ""
	n := startNode(t, cfg)
	if n.Mode() != ModeCluster || n.Name() != cfg.NodeName.String() {
		t.Fatalf("node %s in mode %q, want cluster node %s", n.Name(), n.Mode(), cfg.NodeName)
	}
	s := standalone(t, Config{})
	if s.Mode() != ModeStandalone || s.Name() != StandaloneNodeName {
		t.Fatalf("zero Config: node %s in mode %q, want %s standalone", s.Name(), s.Mode(), StandaloneNodeName)
	}
}

// TestWithLoggerReceivesRuntimeLogs checks that the option replaces
// Config.Logger and that the lines keep their [mesh-rt ...] messages.
func TestWithLoggerReceivesRuntimeLogs(t *testing.T) {
	var fromConfig, fromOption syncBuffer
	port := freePort(t)
	cfg := testConfig(t, "logged", "127.0.0.1", port, RolePrimary)
	cfg.Logger = slog.New(slog.NewTextHandler(&fromConfig, nil))
	startNode(t, cfg, WithLogger(slog.New(slog.NewTextHandler(&fromOption, nil))))
	want := `msg="[mesh-rt transport] listening" node=logged@127.0.0.1:`
	if !strings.Contains(fromOption.String(), want) {
		t.Errorf("WithLogger logger got:\n%s\nwant a line containing %s", fromOption.String(), want)
	}
	if fromConfig.String() != "" {
		t.Errorf("Config.Logger still logs with WithLogger set:\n%s", fromConfig.String())
	}

	var kept syncBuffer
	cfg = testConfig(t, "kept", "127.0.0.1", freePort(t), RolePrimary)
	cfg.Logger = slog.New(slog.NewTextHandler(&kept, nil))
	startNode(t, cfg, WithLogger(nil))
	if !strings.Contains(kept.String(), `msg="[mesh-rt transport] listening" node=kept@127.0.0.1:`) {
		t.Errorf("WithLogger(nil) dropped Config.Logger; it got:\n%s", kept.String())
	}
}
