package cluster

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"meshgo.dev/mesh/internal/arbiter"
	meshcookie "meshgo.dev/mesh/internal/cookie"
	"meshgo.dev/mesh/internal/handshake"
)

// Environment variables of the node contract. Every value is trimmed, and a
// value that is blank after trimming counts as unset.
const (
	envClusterPort       = "MESH_CLUSTER_PORT"
	envClusterCookie     = "MESH_CLUSTER_COOKIE"
	envClusterCookieFile = "MESH_CLUSTER_COOKIE_FILE"
	envDiscoverySeed     = "MESH_DISCOVERY_SEED"
	envNodeName          = "MESH_NODE_NAME"
	envNodeHost          = "MESH_NODE_HOST"
	envContinuityRole    = "MESH_CONTINUITY_ROLE"
	envPromotionEpoch    = "MESH_CONTINUITY_PROMOTION_EPOCH"
	envDiscoveryInterval = "MESH_DISCOVERY_INTERVAL_MS"
	envStartupWorkDelay  = "MESH_STARTUP_WORK_DELAY_MS"
	envHeartbeatInterval = "MESH_HEARTBEAT_INTERVAL_MS"
	envPeerTimeout       = "MESH_PEER_TIMEOUT_MS"
	envDiagnosticsCap    = "MESH_DIAGNOSTICS_CAPACITY"
	envRetainRecords     = "MESH_CONTINUITY_RETAIN_RECORDS"
	envRetainBytes       = "MESH_CONTINUITY_RETAIN_BYTES"
	envRouteTimeout      = "MESH_ROUTE_TIMEOUT_MS"
	envRouteMaxBody      = "MESH_ROUTE_MAX_BODY_BYTES"
	envWorkMaxResult     = "MESH_WORK_MAX_RESULT_BYTES"
	envMaxRunningWork    = "MESH_MAX_RUNNING_WORK"
	envStateDir          = "MESH_STATE_DIR"
	envContinuityStore   = "MESH_CONTINUITY_STORE"
	envLogFormat         = "MESH_LOG_FORMAT"
	envArbiter           = "MESH_ARBITER" // arbiter.EnvVar (TestArbiterEnvName)
	envMinProtocol       = "MESH_CLUSTER_MIN_PROTOCOL"
)

// envVars lists every variable ConfigFromEnv reads, in reporting order.
var envVars = []string{
	envClusterPort, envClusterCookie, envClusterCookieFile, envDiscoverySeed, envNodeName, envNodeHost,
	envContinuityRole, envPromotionEpoch, envDiscoveryInterval, envStartupWorkDelay,
	envHeartbeatInterval, envPeerTimeout, envDiagnosticsCap, envRetainRecords,
	envRetainBytes, envRouteTimeout, envRouteMaxBody, envWorkMaxResult, envMaxRunningWork, envStateDir, envArbiter, envContinuityStore, envLogFormat,
	envMinProtocol,
}

// maxMillis is the largest millisecond count a time.Duration can hold.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// ConfigFromEnv builds a validated Config from the MESH_* environment as read
// through getenv (nil means os.Getenv). hostname (nil means os.Hostname) is
// called only when a cluster node has no MESH_NODE_NAME and its identity is
// derived as <hostname>@<MESH_NODE_HOST or hostname>:<port>.
//
// The rules, in the order problems are reported:
//
//   - MESH_CLUSTER_PORT: default 4370, else an integer in 1..65535. It is
//     checked even when the node runs standalone.
//   - Mode: a non-blank MESH_CLUSTER_COOKIE (or MESH_CLUSTER_COOKIE_FILE, the
//     path of a file holding it) selects cluster mode. Without one, any
//     cluster hint (MESH_DISCOVERY_SEED, MESH_NODE_NAME, MESH_NODE_HOST) is
//     an error; with no hint at all the node runs standalone (zero NodeName,
//     empty seed). Cluster mode requires MESH_DISCOVERY_SEED.
//   - Cookie: both variables set is an error; the file must be a regular
//     file its group and other users cannot read; the cookie must pass
//     cookie.Check (at least 32 characters, no known placeholder), and the
//     error names `meshc cluster cookie`, which prints a good one.
//   - Identity: MESH_NODE_NAME as name@host:port (IPv6 in brackets) whose port
//     equals the cluster port; otherwise derived from the hostname.
//   - MESH_CONTINUITY_ROLE (primary or standby, default primary) and
//     MESH_CONTINUITY_PROMOTION_EPOCH (unsigned, default 0).
//   - Positive integer knobs with defaults: MESH_DISCOVERY_INTERVAL_MS (5000),
//     MESH_STARTUP_WORK_DELAY_MS (2500), MESH_HEARTBEAT_INTERVAL_MS (250),
//     MESH_PEER_TIMEOUT_MS (1500, greater than the heartbeat interval),
//     MESH_DIAGNOSTICS_CAPACITY (128), MESH_CONTINUITY_RETAIN_RECORDS (10000),
//     MESH_CONTINUITY_RETAIN_BYTES (67108864), MESH_ROUTE_TIMEOUT_MS (5000),
//     MESH_ROUTE_MAX_BODY_BYTES (1048576), MESH_WORK_MAX_RESULT_BYTES (1048576,
//     at most 4194304), MESH_MAX_RUNNING_WORK (64, at most 65536).
//   - MESH_STATE_DIR: any path; empty leaves StateDir "" (derived later).
//   - MESH_CONTINUITY_STORE: log or memory; empty leaves ContinuityStore ""
//     (log on a cluster node, memory on a standalone one). A standalone node
//     given log keeps it under MESH_STATE_DIR, which it then requires.
//   - MESH_ARBITER: unset or peer (the two-node rule), or, on a cluster
//     node, postgres://... / postgresql://... (a lease in PostgreSQL) or
//     etcd://[user:password@]host:port[,host:port] (an etcd lease); a value
//     arbiter.ParseSpec refuses is reported with its reason. The error never
//     shows the value's credentials.
//   - MESH_LOG_FORMAT: text (the default) or json.
//   - MESH_CLUSTER_MIN_PROTOCOL: the oldest cluster protocol version the
//     node links on, from 3 (the default: the oldest this build speaks) to
//     4 (the newest).
//
// Every value is trimmed and a blank value counts as unset. A value that is
// not valid UTF-8 is reported as "<VAR> must be valid UTF-8" and nothing else
// is checked. Otherwise every independent problem is reported at once through
// errors.Join, so a single problem's Error() is exactly its message. Invalid
// values never fall back silently to a default. No error ever contains the
// cookie. On error the returned Config is the zero Config.
func ConfigFromEnv(getenv func(string) string, hostname func() (string, error)) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if hostname == nil {
		hostname = os.Hostname
	}

	var errs []error
	for _, name := range envVars {
		if !utf8.ValidString(getenv(name)) {
			errs = append(errs, errors.New(name+" must be valid UTF-8"))
		}
	}
	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	get := func(name string) string { return strings.TrimSpace(getenv(name)) }
	invalid := func(name, reason string) { errs = append(errs, invalidSetting(name, reason)) }

	cfg := Config{Mode: ModeStandalone, ClusterPort: DefaultClusterPort, Role: RolePrimary}

	// The port comes first: a bad port fails even a standalone node.
	portOK := true
	if v := get(envClusterPort); v != "" {
		cfg.ClusterPort, portOK = parsePort(v)
		if !portOK {
			invalid(envClusterPort, reasonPositive)
		}
	}

	cookie, cookieFile, seed := get(envClusterCookie), get(envClusterCookieFile), get(envDiscoverySeed)
	name, host := get(envNodeName), get(envNodeHost)
	if cookie != "" || cookieFile != "" || seed != "" || name != "" || host != "" {
		cfg.Mode = ModeCluster
		cfg.DiscoverySeed = seed
		switch {
		case cookie != "" && cookieFile != "":
			errs = append(errs, errors.New("set only one of "+envClusterCookie+" and "+envClusterCookieFile))
		case cookieFile != "":
			c, err := meshcookie.ReadFile(envClusterCookieFile, cookieFile)
			if err != nil {
				errs = append(errs, errors.New("Invalid "+err.Error()))
			} else if err := meshcookie.Check(envClusterCookieFile, c); err != nil {
				errs = append(errs, err)
			}
			cfg.Cookie = Cookie(c)
		case cookie == "":
			errs = append(errs, errors.New(msgCookieRequired))
		default:
			if err := meshcookie.Check(envClusterCookie, cookie); err != nil {
				errs = append(errs, err)
			}
			cfg.Cookie = Cookie(cookie)
		}
		if seed == "" {
			errs = append(errs, errors.New(msgSeedMissing))
		}
		if name != "" {
			n, err := ParseNodeName(name)
			var nerr *NodeNameError
			switch {
			case errors.As(err, &nerr):
				invalid(envNodeName, nerr.Reason)
			case portOK && n.Port != cfg.ClusterPort:
				invalid(envNodeName, reasonPortMismatch)
			}
			cfg.NodeName = n
		} else {
			n, reason := deriveNodeName(hostname, host, cfg.ClusterPort)
			if reason != "" {
				errs = append(errs, errors.New("Invalid cluster identity: "+reason))
			}
			cfg.NodeName = n
		}
	}

	switch v := get(envContinuityRole); v {
	case "", string(RolePrimary):
	case string(RoleStandby):
		cfg.Role = RoleStandby
	default:
		invalid(envContinuityRole, reasonRole(v))
	}
	if v := get(envPromotionEpoch); v != "" {
		epoch, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			invalid(envPromotionEpoch, fmt.Sprintf("expected an unsigned integer, got %q", v))
		}
		cfg.Epoch = epoch
	}

	// positive reads a positive integer knob no greater than limit.
	positive := func(name string, def, limit int64) (int64, bool) {
		v := get(name)
		if v == "" {
			return def, true
		}
		n, err := strconv.ParseUint(v, 10, 64)
		switch {
		case err != nil && errors.Is(err, strconv.ErrRange), err == nil && n > uint64(limit):
			invalid(name, fmt.Sprintf("expected a positive integer no greater than %d", limit))
			return 0, false
		case err != nil, n == 0:
			invalid(name, reasonPositive)
			return 0, false
		}
		return int64(n), true
	}
	millis := func(name string, def time.Duration) (time.Duration, bool) {
		n, ok := positive(name, def.Milliseconds(), maxMillis)
		return time.Duration(n) * time.Millisecond, ok
	}

	cfg.DiscoveryInterval, _ = millis(envDiscoveryInterval, DefaultDiscoveryInterval)
	cfg.StartupWorkDelay, _ = millis(envStartupWorkDelay, DefaultStartupWorkDelay)
	var heartbeatOK, peerOK bool
	cfg.HeartbeatInterval, heartbeatOK = millis(envHeartbeatInterval, DefaultHeartbeatInterval)
	cfg.PeerTimeout, peerOK = millis(envPeerTimeout, DefaultPeerTimeout)
	if heartbeatOK && peerOK && cfg.PeerTimeout <= cfg.HeartbeatInterval {
		invalid(envPeerTimeout, reasonPeerTimeout(cfg.PeerTimeout.Milliseconds(), cfg.HeartbeatInterval.Milliseconds()))
	}
	capacity, _ := positive(envDiagnosticsCap, DefaultDiagnosticsCapacity, math.MaxInt)
	cfg.DiagnosticsCapacity = int(capacity)
	retain, _ := positive(envRetainRecords, DefaultRetainedRecords, math.MaxInt)
	cfg.RetainedRecords = int(retain)
	cfg.RetainedBytes, _ = positive(envRetainBytes, DefaultRetainedBytes, math.MaxInt64)
	cfg.RouteTimeout, _ = millis(envRouteTimeout, DefaultRouteTimeout)
	cfg.RouteMaxBodyBytes, _ = positive(envRouteMaxBody, DefaultRouteMaxBodyBytes, math.MaxInt64)
	cfg.WorkMaxResultBytes, _ = positive(envWorkMaxResult, DefaultWorkMaxResultBytes, MaxWorkResultBytes)
	running, _ := positive(envMaxRunningWork, DefaultMaxRunningWork, MaxMaxRunningWork)
	cfg.MaxRunningWork = int(running)
	cfg.StateDir = get(envStateDir)
	switch v := get(envContinuityStore); v {
	case "", StoreLog, StoreMemory:
		cfg.ContinuityStore = v
		if v == StoreLog && cfg.Mode == ModeStandalone && cfg.StateDir == "" {
			invalid(envContinuityStore, reasonStoreNeedsStateDir)
		}
	default:
		invalid(envContinuityStore, reasonStore(v))
	}
	if err := checkArbiter(get(envArbiter), cfg.Mode); err != nil {
		errs = append(errs, err)
	} else if v := get(envArbiter); v != string(arbiter.KindPeer) {
		cfg.Arbiter = ArbiterDSN(v)
	}
	switch v := get(envLogFormat); v {
	case "", LogFormatText, LogFormatJSON:
		cfg.LogFormat = v
	default:
		invalid(envLogFormat, reasonLogFormat(v))
	}
	if v := get(envMinProtocol); v != "" {
		n, err := strconv.ParseUint(v, 10, 8)
		if err != nil || n < handshake.MinVersion || n > handshake.Version {
			invalid(envMinProtocol, reasonMinProtocol)
		} else {
			cfg.MinProtocolVersion = int(n)
		}
	}

	if len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// deriveNodeName composes <hostname>@<advertised host>:<port> for a cluster
// node without MESH_NODE_NAME. advertised is the trimmed MESH_NODE_HOST; blank
// means the hostname. A non-empty reason explains why no identity could be
// derived.
func deriveNodeName(hostname func() (string, error), advertised string, port int) (NodeName, string) {
	h, err := hostname()
	if err != nil {
		return NodeName{}, "failed to read system hostname: " + err.Error()
	}
	if !utf8.ValidString(h) {
		return NodeName{}, "system hostname is not valid UTF-8"
	}
	h = strings.TrimSpace(h)
	switch {
	case h == "":
		return NodeName{}, "system hostname is blank"
	case strings.Contains(h, "@") || strings.ContainsFunc(h, unicode.IsSpace):
		return NodeName{}, "system hostname contains invalid characters"
	}
	if advertised == "" {
		advertised = h
	}
	host, reason := normalizeAdvertisedHost(advertised)
	if reason != "" {
		return NodeName{}, reason
	}
	return NodeName{Name: h, Host: host, Port: port}, ""
}

// normalizeAdvertisedHost returns the host to store in a NodeName (never
// bracketed): "[x]" becomes x, and a raw IPv6 literal is kept as is, to be
// bracketed by NodeName.String. A non-empty reason explains a refusal.
func normalizeAdvertisedHost(s string) (string, string) {
	open, closed := strings.HasPrefix(s, "["), strings.HasSuffix(s, "]")
	switch {
	case s == "":
		return "", "advertised host cannot be blank"
	case strings.Contains(s, "@"):
		return "", "advertised host cannot contain @"
	case strings.ContainsFunc(s, unicode.IsSpace):
		return "", "advertised host cannot contain spaces"
	case open && !closed:
		return "", "advertised host has an opening '[' without a closing ']'"
	case closed && !open:
		return "", "advertised host has a closing ']' without an opening '['"
	case open && closed:
		s = s[1 : len(s)-1]
		if s == "" {
			return "", "advertised host cannot be blank"
		}
	}
	if strings.ContainsAny(s, "[]") {
		return "", "advertised host is invalid"
	}
	return s, ""
}

// checkArbiter validates a MESH_ARBITER value for a node in mode: peer,
// or postgres or etcd on a cluster node. A malformed value gets ParseSpec's
// precise reason. No error shows the value's credentials.
func checkArbiter(v string, mode Mode) error {
	spec, err := checkArbiterSpec(v)
	if err != nil {
		return err
	}
	if spec.Kind != arbiter.KindPeer && mode != ModeCluster {
		return invalidSetting(envArbiter, fmt.Sprintf("%s arbiter (%s) needs a cluster node (set %s); a standalone node has no standby to hand over to",
			spec.Kind, spec, envClusterCookie))
	}
	return nil
}
