package cluster

import (
	"log/slog"
	"time"

	"meshgo.dev/mesh/internal/wire"
)

// Mode is the bootstrap mode.
type Mode string

// Modes. Without a cookie and without cluster hints a node runs standalone:
// declared work still runs, locally.
const (
	ModeStandalone Mode = "standalone"
	ModeCluster    Mode = "cluster"
)

// Defaults of the environment contract.
const (
	DefaultClusterPort         = 4370
	DefaultDiscoveryInterval   = 5000 * time.Millisecond
	DefaultStartupWorkDelay    = 2500 * time.Millisecond
	DefaultHeartbeatInterval   = 250 * time.Millisecond
	DefaultPeerTimeout         = 1500 * time.Millisecond
	DefaultDiagnosticsCapacity = 128
	DefaultRetainedRecords     = 10000
	DefaultRouteTimeout        = 5000 * time.Millisecond
	DefaultRouteMaxBodyBytes   = 1 << 20  // 1 MiB
	DefaultRetainedBytes       = 64 << 20 // 64 MiB
	// DefaultWorkMaxResultBytes bounds the encoded output (and input) of
	// typed declared work stored on its record.
	DefaultWorkMaxResultBytes = 1 << 20 // 1 MiB
	// MaxWorkResultBytes is the largest WorkMaxResultBytes a node accepts:
	// what a record may carry on the peer wire.
	MaxWorkResultBytes = wire.MaxWorkValue
	// DefaultMaxRunningWork bounds the declared-work executions running at
	// once on a node. Declared work mostly waits on I/O (a database, another
	// service), so a few dozen executions overlap that waiting well even on a
	// two-core machine, while a burst of submissions costs at most this many
	// goroutines and handler working sets; an application whose work holds a
	// pooled connection sets it to its pool size.
	DefaultMaxRunningWork = 64
	// MaxMaxRunningWork is the largest MaxRunningWork a node accepts.
	MaxMaxRunningWork = 1 << 16
)

// Record stores (MESH_CONTINUITY_STORE).
const (
	// StoreLog keeps the records in memory and in a checksummed, fsynced
	// log under the state directory: an acknowledged record survives the
	// loss of both nodes.
	StoreLog = "log"
	// StoreMemory keeps the records in memory only: they survive the loss
	// of one node (its peer holds them), not of both.
	StoreMemory = "memory"
)

// DefaultContinuityStore is the record store of a cluster node whose Config
// names none. It stays StoreMemory until the log store meets its throughput
// goal (Clustered(2) at 35 % of a plain handler; measured at about 15 %
// with wrk, against 36 % with StoreMemory, bench/RESULTS.md): a default
// should not cost most of a pair's throughput. A standalone node keeps its records in memory unless it names
// StoreLog.
const DefaultContinuityStore = StoreMemory

// storeKind is the record store the node uses.
func (c Config) storeKind() string {
	switch {
	case c.ContinuityStore != "":
		return c.ContinuityStore
	case c.mode() == ModeCluster:
		return DefaultContinuityStore
	}
	return StoreMemory
}

// Cookie is the shared cluster secret. It prints as [redacted] in every format,
// log attribute and JSON document; only the handshake reads its bytes.
type Cookie string

// String returns "[redacted]".
func (Cookie) String() string { return "[redacted]" }

// GoString returns "[redacted]".
func (Cookie) GoString() string { return "[redacted]" }

// LogValue returns "[redacted]".
func (Cookie) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalText returns "[redacted]", so JSON and other text encoders never see
// the secret.
func (Cookie) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Config is a node configuration: ConfigFromEnv builds one from the MESH_*
// environment, and code may build one directly (Start checks it with
// Validate). The zero Config is a standalone node with default timings; a
// zero field means its default.
type Config struct {
	// Mode repeats what Cookie decides: a node with a cluster cookie is a
	// cluster node, one without is standalone. It is kept so code that sets
	// or reads it still compiles; ConfigFromEnv fills it, Validate refuses a
	// value that contradicts Cookie, and Node.Mode and BootstrapStatus.Mode
	// report the mode in effect.
	//
	// Deprecated: leave Mode zero; set Cookie for a cluster node.
	Mode          Mode
	Cookie        Cookie
	DiscoverySeed string
	ClusterPort   int
	NodeName      NodeName // zero in standalone mode
	Role          Role     // RolePrimary unless configured
	Epoch         uint64   // initial promotion epoch

	DiscoveryInterval   time.Duration
	StartupWorkDelay    time.Duration
	HeartbeatInterval   time.Duration
	PeerTimeout         time.Duration
	StateDir            string // where the authority state file lives; "" = default per node name
	DiagnosticsCapacity int
	RetainedRecords     int   // terminal records kept; pending records are never evicted
	RetainedBytes       int64 // memory of the terminal records kept (stored responses above all), oldest evicted first
	RouteTimeout        time.Duration
	RouteMaxBodyBytes   int64
	// ContinuityStore is where the records are kept: StoreLog, a durable
	// log under StateDir/records, or StoreMemory. "" means
	// DefaultContinuityStore on a cluster node, StoreMemory on a standalone
	// one.
	ContinuityStore string
	// WorkMaxResultBytes bounds the encoded output of typed declared work:
	// a larger one rejects the attempt with result_too_large, never a
	// truncation. A typed submission whose encoded input is larger is
	// refused with input_too_large. At most MaxWorkResultBytes.
	WorkMaxResultBytes int64
	// MaxRunningWork is MESH_MAX_RUNNING_WORK: at most this many
	// declared-work executions run at once on the node (submitted, startup,
	// recovered and retried work alike). The others wait, pending, in
	// submission order for a slot; at most workQueuePerSlot times as many wait
	// for submissions owned here before Submit waits for room. 0 means
	// DefaultMaxRunningWork; at most MaxMaxRunningWork.
	MaxRunningWork int
	// Arbiter is MESH_ARBITER: "" or "peer" decides promotions with the
	// two-node rule; postgres://... or postgresql://... with a lease in
	// PostgreSQL, etcd://[user:password@]host:port[,host:port] with an etcd
	// lease, that a
	// primary must hold to act (a cluster node only). It prints as its
	// redacted form.
	Arbiter ArbiterDSN

	// Logger receives runtime logs; nil means slog.Default(), or with
	// LogFormat LogFormatJSON a JSON handler on standard error. WithLogger
	// overrides it. The runtime never changes the default logger.
	Logger *slog.Logger
	// LogFormat is MESH_LOG_FORMAT: "" or LogFormatText keeps the text lines
	// of the default logger; LogFormatJSON writes one JSON object per line.
	// It applies only when Logger is nil.
	LogFormat string
	// MinProtocolVersion is MESH_CLUSTER_MIN_PROTOCOL: the oldest cluster
	// protocol version the node links on, with peers and with meshc. 0
	// means the oldest this build speaks, so a node links with a peer one
	// version behind during a rolling upgrade. Once every node and meshc
	// runs the new build, setting it to the newest version refuses a link
	// on an older one: the older peer's refusal that makes a node dial
	// again on an older version comes before the cookie proof, so an active
	// attacker on the network can forge it.
	MinProtocolVersion int
}

// withDefaults fills every zero timing and bound with its default.
func (c Config) withDefaults() Config {
	if c.ClusterPort == 0 {
		c.ClusterPort = DefaultClusterPort
	}
	if c.Role == "" {
		c.Role = RolePrimary
	}
	if c.DiscoveryInterval <= 0 {
		c.DiscoveryInterval = DefaultDiscoveryInterval
	}
	if c.StartupWorkDelay <= 0 {
		c.StartupWorkDelay = DefaultStartupWorkDelay
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if c.PeerTimeout <= 0 {
		c.PeerTimeout = DefaultPeerTimeout
	}
	if c.DiagnosticsCapacity <= 0 {
		c.DiagnosticsCapacity = DefaultDiagnosticsCapacity
	}
	if c.RetainedRecords <= 0 {
		c.RetainedRecords = DefaultRetainedRecords
	}
	if c.RetainedBytes <= 0 {
		c.RetainedBytes = DefaultRetainedBytes
	}
	if c.RouteTimeout <= 0 {
		c.RouteTimeout = DefaultRouteTimeout
	}
	if c.RouteMaxBodyBytes <= 0 {
		c.RouteMaxBodyBytes = DefaultRouteMaxBodyBytes
	}
	if c.WorkMaxResultBytes <= 0 {
		c.WorkMaxResultBytes = DefaultWorkMaxResultBytes
	}
	if c.MaxRunningWork <= 0 {
		c.MaxRunningWork = DefaultMaxRunningWork
	}
	if c.Logger == nil {
		c.Logger = defaultLogger(c.LogFormat)
	}
	return c
}

// NodeName is a node identity name@host:port. Host is stored without brackets;
// String brackets IPv6 hosts.
type NodeName struct {
	Name string
	Host string
	Port int
}
