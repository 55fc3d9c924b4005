package arbiter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// EnvVar is the environment variable that selects the arbiter.
const EnvVar = "MESH_ARBITER"

// Kind is the kind of arbiter, as status reports it in
// authority.safety_mode.
type Kind string

// Kinds of arbiter.
const (
	KindPeer     Kind = "peer"     // the two-node rule: fast, not partition-safe
	KindPostgres Kind = "postgres" // a lease row in PostgreSQL
	KindEtcd     Kind = "etcd"     // an etcd lease
)

// DSN is a connection string that may hold credentials. It prints, logs and
// marshals as its Redacted form in every format; string(d) is the secret.
type DSN string

// String returns Redacted(d).
func (d DSN) String() string { return Redacted(string(d)) }

// GoString returns Redacted(d), quoted.
func (d DSN) GoString() string { return strconv.Quote(Redacted(string(d))) }

// LogValue returns Redacted(d).
func (d DSN) LogValue() slog.Value { return slog.StringValue(Redacted(string(d))) }

// MarshalText returns Redacted(d), so JSON never sees the secret.
func (d DSN) MarshalText() ([]byte, error) { return []byte(Redacted(string(d))), nil }

// Spec is a parsed MESH_ARBITER value.
type Spec struct {
	Kind      Kind
	DSN       DSN      // postgres and etcd: the value as given, credentials included
	Endpoints []string // etcd: host:port of each member, in the given order
}

// String is the Spec as it may be shown: "peer", or the scheme and hosts
// without credentials, database or parameters.
func (s Spec) String() string {
	switch s.Kind {
	case KindPostgres:
		return s.DSN.String()
	case KindEtcd:
		return "etcd://" + strings.Join(s.Endpoints, ",")
	}
	return string(KindPeer)
}

// ParseSpec parses a MESH_ARBITER value (already trimmed or not):
//
//   - "" or "peer": KindPeer.
//   - postgres://... or postgresql://...: KindPostgres. It must be a URL with
//     a host; the rest (user, password, database, parameters) is left to the
//     driver.
//   - etcd://[user:password@]host:port[,host:port...]: KindEtcd. Every
//     member needs a host and a port in 1..65535; nothing may follow but a
//     trailing slash. Credentials, for an etcd cluster with authentication
//     on, are a user and a password, both non-empty and percent-encoded
//     (EtcdCredentials decodes them).
//
// An error reads "Invalid MESH_ARBITER: <reason>", like the rest of the
// environment contract, and never holds the value's credentials: a value
// that could hold them is shown in its Redacted form, or not at all.
func ParseSpec(value string) (Spec, error) {
	v := strings.TrimSpace(value)
	scheme, rest, isURL := strings.Cut(v, "://")
	switch {
	case v == "" || v == string(KindPeer):
		return Spec{Kind: KindPeer}, nil
	case !isURL:
		if strings.ContainsAny(v, "=@:/ \t") { // could be a keyword/value connection string
			return Spec{}, invalidSpec("expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got a value that is none of them (not shown: it may hold credentials)")
		}
		return Spec{}, invalidSpec(fmt.Sprintf("expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got %q", v))
	case scheme == "postgres" || scheme == "postgresql":
		u, err := url.Parse(v)
		if err != nil {
			return Spec{}, invalidSpec(scheme + " connection string is not a valid URL (not shown: it may hold credentials)")
		}
		if u.Host == "" {
			return Spec{}, invalidSpec(fmt.Sprintf("%s has no host: both nodes must reach the same server", Redacted(v)))
		}
		return Spec{Kind: KindPostgres, DSN: DSN(v)}, nil
	case scheme == "etcd":
		userinfo, hosts, hasUser := cutUserinfo(rest)
		if hasUser {
			if _, _, err := splitUserinfo(userinfo); err != nil {
				return Spec{}, invalidSpec(err.Error())
			}
		}
		eps, err := parseEndpoints(strings.TrimSuffix(hosts, "/"))
		if err != nil {
			return Spec{}, invalidSpec(err.Error())
		}
		return Spec{Kind: KindEtcd, DSN: DSN(v), Endpoints: eps}, nil
	default:
		return Spec{}, invalidSpec(fmt.Sprintf("unsupported scheme %q: expected postgres://, postgresql:// or etcd://", scheme))
	}
}

func invalidSpec(reason string) error { return errors.New("Invalid " + EnvVar + ": " + reason) }

// EtcdCredentials returns the user and password of an etcd:// value,
// percent-decoded, or two empty strings when it has none. Its error never
// shows them.
func EtcdCredentials(value string) (user, password string, err error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(value), "etcd://")
	if !ok {
		return "", "", errors.New("want etcd://[user:password@]host:port[,host:port]")
	}
	userinfo, _, hasUser := cutUserinfo(rest)
	if !hasUser {
		return "", "", nil
	}
	return splitUserinfo(userinfo)
}

// cutUserinfo splits what follows etcd:// at its last '@' (a password
// may hold one), into the user info and the member list.
func cutUserinfo(rest string) (userinfo, hosts string, ok bool) {
	i := strings.LastIndexByte(rest, '@')
	if i < 0 {
		return "", rest, false
	}
	return rest[:i], rest[i+1:], true
}

// splitUserinfo decodes user:password, both required.
func splitUserinfo(userinfo string) (user, password string, err error) {
	u, pw, ok := strings.Cut(userinfo, ":")
	user, err1 := url.PathUnescape(u)
	password, err2 := url.PathUnescape(pw)
	if !ok || user == "" || password == "" || err1 != nil || err2 != nil {
		return "", "", errors.New("etcd credentials must be user:password, percent-encoded (not shown)")
	}
	return user, password, nil
}

// parseEndpoints parses host:port[,host:port...].
func parseEndpoints(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("etcd:// needs at least one host:port")
	}
	if strings.ContainsAny(list, "@/?#") {
		return nil, errors.New("expected etcd://[user:password@]host:port[,host:port] with nothing else (no path or parameters)")
	}
	var eps []string
	for ep := range strings.SplitSeq(list, ",") {
		host, port, err := net.SplitHostPort(ep)
		if err != nil || host == "" {
			return nil, fmt.Errorf("etcd member %q: expected host:port (an IPv6 host in brackets)", ep)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("etcd member %q: port must be 1..65535", ep)
		}
		eps = append(eps, ep)
	}
	return eps, nil
}
