package cluster

import (
	"errors"
	"fmt"

	meshcookie "meshgo.dev/mesh/internal/cookie"
	"meshgo.dev/mesh/internal/handshake"
)

// Messages shared by ConfigFromEnv and Config.Validate, so a problem reads
// the same whichever way the configuration was built.
const (
	reasonPositive     = "expected a positive integer"
	reasonPortMismatch = "port must match " + envClusterPort
	msgCookieRequired  = envClusterCookie + " is required when discovery or identity env is set"
	msgSeedMissing     = "Missing required environment variable " + envDiscoverySeed
)

// invalidSetting reports a refused value: "Invalid <VAR>: <reason>".
func invalidSetting(name, reason string) error {
	return errors.New("Invalid " + name + ": " + reason)
}

// reasonRole explains a role that is neither primary nor standby.
func reasonRole(got string) string {
	return fmt.Sprintf("expected primary or standby, got %q", got)
}

// reasonMinProtocol explains a minimum protocol version this build cannot
// link on.
var reasonMinProtocol = fmt.Sprintf("expected a protocol version from %d to %d", handshake.MinVersion, handshake.Version)

// reasonStore explains a record store that is neither log nor memory.
func reasonStore(got string) string {
	return fmt.Sprintf("expected %s or %s, got %q", StoreLog, StoreMemory, got)
}

// reasonStoreNeedsStateDir explains a standalone log store without a
// directory.
const reasonStoreNeedsStateDir = "a standalone node keeps the log under " + envStateDir + ", which is not set"

// reasonLogFormat explains a log format that is neither text nor json.
func reasonLogFormat(got string) string {
	return fmt.Sprintf("expected %s or %s, got %q", LogFormatText, LogFormatJSON, got)
}

// reasonPeerTimeout explains a peer timeout that does not exceed the
// heartbeat interval.
func reasonPeerTimeout(peer, heartbeat int64) string {
	return fmt.Sprintf("peer timeout %dms must be greater than %s %dms", peer, envHeartbeatInterval, heartbeat)
}

// mode is the bootstrap mode the configuration selects: a cluster cookie
// means a cluster node, no cookie a standalone one. The Mode field only
// repeats it.
func (c Config) mode() Mode {
	if c.Cookie != "" {
		return ModeCluster
	}
	return ModeStandalone
}

// Validate checks a Config built in code by the rules ConfigFromEnv applies
// to the environment, and reports every problem at once through errors.Join
// (a single problem's Error() is exactly its message). Each message is the
// one ConfigFromEnv gives for the same problem, so it names the environment
// variable that sets the field (ClusterPort is MESH_CLUSTER_PORT, and so on).
// A zero field means its default, as in Start. The rules, in reporting order:
//
//   - ClusterPort: 0 (default 4370) or 1..65535.
//   - Cookie selects cluster mode. Without one, a DiscoverySeed, a NodeName
//     or Mode ModeCluster is an error. In cluster mode the cookie must pass
//     the strength check, DiscoverySeed is required, and NodeName must be a
//     valid name@host:port (what ParseNodeName accepts) whose port equals
//     the cluster port. Mode, when set, must agree with the cookie.
//   - Role: "", RolePrimary or RoleStandby. Epoch: any value.
//   - Durations and bounds: zero or positive; PeerTimeout greater than
//     HeartbeatInterval once defaults are applied.
//   - ContinuityStore: "", StoreLog or StoreMemory; StoreLog on a standalone
//     node needs a StateDir.
//   - Arbiter: "", "peer", or postgres://... / postgresql://... /
//     etcd://[user:password@]host:port[,host:port] on a cluster node; no
//     message shows its credentials.
//   - LogFormat: "", LogFormatText or LogFormatJSON.
//
// Every Config returned by ConfigFromEnv is valid. No message contains the
// cookie.
func (c Config) Validate() error {
	var errs []error
	invalid := func(name, reason string) { errs = append(errs, invalidSetting(name, reason)) }

	port := c.ClusterPort
	portOK := true
	switch {
	case port == 0:
		port = DefaultClusterPort
	case port < 0 || port > 65535:
		portOK = false
		invalid(envClusterPort, reasonPositive)
	}

	switch c.Mode {
	case "", ModeStandalone, ModeCluster:
	default:
		errs = append(errs, fmt.Errorf("Invalid Config.Mode: expected %q or %q, got %q", ModeStandalone, ModeCluster, string(c.Mode)))
	}
	if c.Mode == ModeStandalone && c.Cookie != "" {
		errs = append(errs, errors.New("Invalid Config.Mode: a cluster cookie makes the node a cluster node, not standalone"))
	}
	if c.Cookie != "" || c.DiscoverySeed != "" || !c.NodeName.IsZero() || c.Mode == ModeCluster {
		if c.Cookie == "" {
			errs = append(errs, errors.New(msgCookieRequired))
		} else if err := meshcookie.Check(envClusterCookie, string(c.Cookie)); err != nil {
			errs = append(errs, err)
		}
		if c.DiscoverySeed == "" {
			errs = append(errs, errors.New(msgSeedMissing))
		}
		// Rendered by hand: String renders a NodeName without a name as "".
		parsed, err := ParseNodeName(c.NodeName.Name + "@" + c.NodeName.Addr())
		var nerr *NodeNameError
		switch {
		case errors.As(err, &nerr):
			invalid(envNodeName, nerr.Reason)
		case parsed != c.NodeName:
			invalid(envNodeName, reasonShape)
		case portOK && c.NodeName.Port != port:
			invalid(envNodeName, reasonPortMismatch)
		}
	}

	switch c.Role {
	case "", RolePrimary, RoleStandby:
	default:
		invalid(envContinuityRole, reasonRole(string(c.Role)))
	}

	positive := func(name string, v int64) bool {
		if v < 0 {
			invalid(name, reasonPositive)
			return false
		}
		return true
	}
	positive(envDiscoveryInterval, int64(c.DiscoveryInterval))
	positive(envStartupWorkDelay, int64(c.StartupWorkDelay))
	heartbeatOK := positive(envHeartbeatInterval, int64(c.HeartbeatInterval))
	peerOK := positive(envPeerTimeout, int64(c.PeerTimeout))
	if heartbeatOK && peerOK {
		d := c.withDefaults()
		if d.PeerTimeout <= d.HeartbeatInterval {
			invalid(envPeerTimeout, reasonPeerTimeout(d.PeerTimeout.Milliseconds(), d.HeartbeatInterval.Milliseconds()))
		}
	}
	positive(envDiagnosticsCap, int64(c.DiagnosticsCapacity))
	positive(envRetainRecords, int64(c.RetainedRecords))
	positive(envRetainBytes, c.RetainedBytes)
	positive(envRouteTimeout, int64(c.RouteTimeout))
	positive(envRouteMaxBody, c.RouteMaxBodyBytes)
	switch c.ContinuityStore {
	case "", StoreLog, StoreMemory:
		if c.ContinuityStore == StoreLog && c.mode() == ModeStandalone && c.StateDir == "" {
			invalid(envContinuityStore, reasonStoreNeedsStateDir)
		}
	default:
		invalid(envContinuityStore, reasonStore(c.ContinuityStore))
	}
	if positive(envWorkMaxResult, c.WorkMaxResultBytes) && c.WorkMaxResultBytes > MaxWorkResultBytes {
		invalid(envWorkMaxResult, fmt.Sprintf("expected a positive integer no greater than %d", MaxWorkResultBytes))
	}
	if positive(envMaxRunningWork, int64(c.MaxRunningWork)) && c.MaxRunningWork > MaxMaxRunningWork {
		invalid(envMaxRunningWork, fmt.Sprintf("expected a positive integer no greater than %d", MaxMaxRunningWork))
	}
	if err := checkArbiter(string(c.Arbiter), c.mode()); err != nil {
		errs = append(errs, err)
	}
	switch c.LogFormat {
	case "", LogFormatText, LogFormatJSON:
	default:
		invalid(envLogFormat, reasonLogFormat(c.LogFormat))
	}
	if v := c.MinProtocolVersion; v != 0 && (v < handshake.MinVersion || v > handshake.Version) {
		invalid(envMinProtocol, reasonMinProtocol)
	}
	return errors.Join(errs...)
}
