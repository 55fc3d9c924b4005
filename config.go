package mesh

import "meshgo.dev/mesh/internal/cluster"

// Modes. Without a cookie and without cluster hints a node runs standalone:
// declared work still runs, locally.
const (
	ModeStandalone = cluster.ModeStandalone
	ModeCluster    = cluster.ModeCluster
)

// Defaults of the environment contract.
const (
	DefaultClusterPort         = cluster.DefaultClusterPort
	DefaultDiscoveryInterval   = cluster.DefaultDiscoveryInterval
	DefaultStartupWorkDelay    = cluster.DefaultStartupWorkDelay
	DefaultHeartbeatInterval   = cluster.DefaultHeartbeatInterval
	DefaultPeerTimeout         = cluster.DefaultPeerTimeout
	DefaultDiagnosticsCapacity = cluster.DefaultDiagnosticsCapacity
	DefaultRetainedRecords     = cluster.DefaultRetainedRecords
	DefaultRouteTimeout        = cluster.DefaultRouteTimeout
	DefaultRouteMaxBodyBytes   = cluster.DefaultRouteMaxBodyBytes
	DefaultRetainedBytes       = cluster.DefaultRetainedBytes
)

// Log formats of MESH_LOG_FORMAT and Config.LogFormat: text keeps the lines
// of the process's default logger, json writes one JSON object per line.
const (
	LogFormatText = cluster.LogFormatText
	LogFormatJSON = cluster.LogFormatJSON
)

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
//   - MESH_ARBITER: unset or peer (the two-node rule), or, on a cluster
//     node, postgres://... / postgresql://... (a lease in PostgreSQL) or
//     etcd://[user:password@]host:port[,host:port] (an etcd lease): the primary must hold
//     the lease to act, and a standby must win it to promote. No error shows
//     credentials.
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
	return cluster.ConfigFromEnv(getenv, hostname)
}

// StandaloneNodeName is the node identity used in continuity records of a
// standalone node, which has no listener and no peers.
const StandaloneNodeName = cluster.StandaloneNodeName

// ParseNodeName parses a node identity of the form name@host:port, with an
// IPv6 host written in brackets (standby@[::1]:4370). It checks syntax only:
// the host is not resolved and the port is not compared with any configured
// port. The returned Host has no brackets. Errors are *NodeNameError.
func ParseNodeName(s string) (NodeName, error) { return cluster.ParseNodeName(s) }

// ParseTarget parses the node an operator command addresses: name@host:port
// or name@[ipv6]:port. Unlike the reference CLI, the port is required; there
// is no default. Errors are *NodeNameError whose text reads
// "invalid node name '<s>': <reason>". Every accepted target is also a valid
// ParseNodeName input.
func ParseTarget(s string) (NodeName, error) { return cluster.ParseTarget(s) }
