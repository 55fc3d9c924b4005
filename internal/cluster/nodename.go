package cluster

import (
	"net"
	"strconv"
	"strings"
	"unicode"
)

// String renders name@host:port, bracketing an IPv6 host. The zero NodeName
// renders as "". For every NodeName returned by ParseNodeName or ParseTarget,
// ParseNodeName(n.String()) returns n again.
func (n NodeName) String() string {
	if n.Name == "" {
		return ""
	}
	return n.Name + "@" + n.Addr()
}

// Addr is the host:port the node listens on and is dialed at, with an IPv6
// host in brackets.
func (n NodeName) Addr() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// IsZero reports whether n is unset.
func (n NodeName) IsZero() bool { return n.Name == "" }

// NodeNameError reports why a node name was refused. Reason is one of the
// fixed texts of the environment contract (for ParseNodeName) or of the
// operator CLI (for ParseTarget); Input is the text that was parsed.
type NodeNameError struct {
	Input  string
	Reason string
}

// Error returns "invalid node name '<input>': <reason>".
func (e *NodeNameError) Error() string {
	return "invalid node name '" + e.Input + "': " + e.Reason
}

// Reasons given by ParseNodeName. They are the texts operators see after
// "Invalid MESH_NODE_NAME: ".
const (
	reasonSpaces       = "value cannot contain spaces"
	reasonShape        = "expected name@host:port"
	reasonBlankName    = "node name cannot be blank"
	reasonBlankHost    = "host cannot be blank"
	reasonIPv6Brackets = "IPv6 host must use [addr]:port"
	reasonBadHost      = "host is invalid"
	reasonBadPort      = "port must be a positive integer"
)

// ParseNodeName parses a node identity of the form name@host:port, with an
// IPv6 host written in brackets (standby@[::1]:4370). It checks syntax only:
// the host is not resolved and the port is not compared with any configured
// port. The returned Host has no brackets. Errors are *NodeNameError.
func ParseNodeName(s string) (NodeName, error) {
	fail := func(reason string) (NodeName, error) {
		return NodeName{}, &NodeNameError{Input: s, Reason: reason}
	}
	if strings.ContainsFunc(s, unicode.IsSpace) {
		return fail(reasonSpaces)
	}
	if strings.Count(s, "@") != 1 {
		return fail(reasonShape)
	}
	name, hostPort, _ := strings.Cut(s, "@")
	if name == "" {
		return fail(reasonBlankName)
	}
	if hostPort == "" {
		return fail(reasonBlankHost)
	}

	var host, port string
	if strings.HasPrefix(hostPort, "[") {
		end := strings.Index(hostPort, "]:")
		if end < 0 {
			return fail(reasonIPv6Brackets)
		}
		host, port = hostPort[1:end], hostPort[end+2:]
		if host == "" {
			return fail(reasonBlankHost)
		}
		if strings.ContainsAny(host, "[]") {
			return fail(reasonBadHost)
		}
	} else {
		if strings.ContainsAny(hostPort, "[]") {
			return fail(reasonBadHost)
		}
		if strings.Count(hostPort, ":") != 1 {
			return fail(reasonShape)
		}
		host, port, _ = strings.Cut(hostPort, ":")
		if host == "" {
			return fail(reasonBlankHost)
		}
	}
	p, ok := parsePort(port)
	if !ok {
		return fail(reasonBadPort)
	}
	return NodeName{Name: name, Host: host, Port: p}, nil
}

// ParseTarget parses the node an operator command addresses: name@host:port or
// name@[ipv6]:port. Unlike the reference CLI, the port is required; there is
// no default. Errors are *NodeNameError whose text reads
// "invalid node name '<s>': <reason>". Every accepted target is also a valid
// ParseNodeName input.
func ParseTarget(s string) (NodeName, error) {
	fail := func(reason string) (NodeName, error) {
		return NodeName{}, &NodeNameError{Input: s, Reason: reason}
	}
	name, rest, found := strings.Cut(s, "@")
	if !found {
		return fail("missing '@' separator")
	}
	if name == "" {
		return fail("empty name part")
	}
	if strings.ContainsFunc(name, unicode.IsSpace) {
		return fail("name part contains invalid characters")
	}
	if rest == "" {
		return fail("empty host part")
	}

	var host, port string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return fail("missing closing ']' for bracketed host")
		}
		host, rest = rest[1:end], rest[end+1:]
		if host == "" {
			return fail("empty host part")
		}
		switch {
		case rest == "" || rest == ":":
			return fail("missing port")
		case rest[0] != ':':
			return fail("unexpected characters after bracketed host")
		}
		port = rest[1:]
	} else {
		switch strings.Count(rest, ":") {
		case 0:
			return fail("missing port")
		case 1:
			host, port, _ = strings.Cut(rest, ":")
		default:
			return fail("IPv6 hosts with ports must use brackets")
		}
		if host == "" {
			return fail("empty host part")
		}
		if port == "" {
			return fail("missing port")
		}
	}
	if strings.ContainsAny(host, "@[]") || strings.ContainsFunc(host, unicode.IsSpace) {
		return fail("host part contains invalid characters")
	}
	p, ok := parsePort(port)
	if !ok {
		return fail("port must be a positive integer")
	}
	return NodeName{Name: name, Host: host, Port: p}, nil
}

// parsePort accepts decimal digits only (no sign, no spaces) in 1..65535.
func parsePort(s string) (int, bool) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, false
	}
	return int(v), true
}
