package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"io"
	"net"
	"strings"
	"syscall"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/operator"
)

// nextStepError is an error with the operator's next step appended: what to
// check or run now. It keeps the exit code of the error it wraps.
type nextStepError struct {
	err  error
	step string
}

func (e *nextStepError) Error() string { return e.err.Error() + "; " + e.step }
func (e *nextStepError) Unwrap() error { return e.err }

// withNextStep returns err with its next step appended when nextStep knows
// one, and err unchanged otherwise (nil stays nil).
func withNextStep(err error) error {
	if step := nextStep(err); step != "" {
		return &nextStepError{err: err, step: step}
	}
	return err
}

// Next steps of the operator query failures. They name the setting to check:
// the node name's port is the cluster port, the cookie's four sources, the
// timeout flag.
const (
	stepRefused = "nothing accepts connections there: check that the node runs and that the port in the node name is " +
		"its MESH_CLUSTER_PORT (the cluster port, default 4370, not its HTTP PORT); under docker compose use the " +
		"published loopback port (127.0.0.1:4370 for node1, 127.0.0.1:4371 for node2)"
	stepNotANode = "something answered there, but not as a Mesh node: check that the port in the node name is the node's " +
		"MESH_CLUSTER_PORT, not its HTTP PORT"
	stepHost = "the host in the node name does not resolve: use the node's MESH_NODE_HOST or an IP address, " +
		"e.g. primary@127.0.0.1:4370"
	stepUnavailable = "check that the node runs, that the node name is its MESH_NODE_NAME (name@host:port), " +
		"and the node's log for handshake errors"
	stepAuth = "meshc's cookie is not the node's MESH_CLUSTER_COOKIE: check which of --cookie-file, --cookie, " +
		"MESH_CLUSTER_COOKIE_FILE and MESH_CLUSTER_COOKIE this shell gives meshc (for a generated project, " +
		"load its .env: set -a; . ./.env; set +a)"
	stepTimeout = "the node took the connection but did not answer in time: it may be frozen (SIGSTOP), overloaded, " +
		"or another program may hold the port; check the process, or raise --timeout-ms"
	stepNotFound = "list the keys the node holds with meshc cluster continuity <node>; completed records past " +
		"MESH_CONTINUITY_RETAIN_RECORDS or MESH_CONTINUITY_RETAIN_BYTES are evicted"
	stepNodeName = "a node name is name@host:port, the node's MESH_NODE_NAME, e.g. primary@127.0.0.1:4370 or standby@[::1]:4370"
	stepDecode   = "meshc and the node may be different Mesh versions: compare meshc version with the node's build"

	stepSwitchoverNotPrimary = "switchover is asked of the primary: find it with meshc cluster status <node> " +
		"(authority.cluster_role, and the peers' roles) and run meshc cluster switchover <primary>"
	stepSwitchoverNotConnected = "the primary has no connected standby to hand over to (or --to names one it is not " +
		"connected to): start the standby, wait until meshc cluster status <primary> <standby> reports the pair " +
		"healthy, and retry; with several peers name one with --to"
	stepSwitchoverNotCaughtUp = "the standby has not yet applied everything the primary sent, or is not at the " +
		"primary's epoch: nothing changed; wait until meshc cluster status <primary> <standby> reports the pair " +
		"healthy, then retry"
	stepSwitchoverUnconfirmed = "the primary may not act right now (its authority is in doubt after a pause, or its " +
		"lease is not valid): nothing changed; check meshc cluster status <node> (ready, authority.lease) and retry " +
		"once it is ready"
	stepSwitchoverBusy = "a switchover or a shutdown is already under way on this node: check meshc cluster " +
		"diagnostics <node> for switchover_completed before retrying"
	stepSwitchoverFailed = "the hand-over was aborted and the primary kept its role: check meshc cluster " +
		"diagnostics on both nodes (switchover_rejected) and the standby's log, then retry"
)

// switchoverStep is the next step for a refused switchover, by the reason
// after switchover_rejected:.
func switchoverStep(reason string) string {
	reason, _, _ = strings.Cut(reason, ":")
	switch reason {
	case "not_primary":
		return stepSwitchoverNotPrimary
	case "standby_not_connected":
		return stepSwitchoverNotConnected
	case "standby_not_caught_up":
		return stepSwitchoverNotCaughtUp
	case "authority_unconfirmed":
		return stepSwitchoverUnconfirmed
	case "switchover_in_progress", "shutting_down":
		return stepSwitchoverBusy
	}
	return stepSwitchoverFailed
}

// nextStep is the operator's next step for err, or "" when the message
// already says it or there is nothing useful to add.
func nextStep(err error) string {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ""
	}
	var qe *operator.QueryError
	if !errors.As(err, &qe) {
		return ""
	}
	switch qe.Failure {
	case operator.FailureUnavailable:
		var dnsErr *net.DNSError
		var recErr tls.RecordHeaderError
		switch {
		case errors.Is(qe, handshake.ErrAuthFailed):
			return stepAuth
		case errors.Is(qe, syscall.ECONNREFUSED):
			return stepRefused
		case errors.As(qe, &dnsErr):
			return stepHost
		case errors.As(qe, &recErr), errors.Is(qe, io.EOF), errors.Is(qe, io.ErrUnexpectedEOF):
			return stepNotANode
		}
		return stepUnavailable
	case operator.FailureTimeout:
		return stepTimeout
	case operator.FailureRejected:
		if qe.Reason == string(continuity.ReasonRequestKeyNotFound) {
			return stepNotFound
		}
		if r, ok := strings.CutPrefix(qe.Reason, "switchover_rejected:"); ok {
			return switchoverStep(r)
		}
	case operator.FailureInvalid:
		if qe.Target != "" {
			return stepNodeName
		}
	case operator.FailureDecode:
		return stepDecode
	}
	return ""
}
