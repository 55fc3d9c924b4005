package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"

	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/operator"
)

// TestErrorNextSteps is the table of operator errors and the next step each
// carries: the setting or command to check, and the exit code unchanged.
func TestErrorNextSteps(t *testing.T) {
	const target = "primary@127.0.0.1:4370"
	q := func(f operator.Failure, err error) *operator.QueryError {
		return &operator.QueryError{Kind: operator.KindStatus, Target: target, Failure: f, Err: err}
	}
	sw := func(reason string) *operator.QueryError {
		return &operator.QueryError{Kind: operator.KindSwitchover, Target: target, Failure: operator.FailureRejected, Reason: reason}
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want string // the message after the error's own: "; <want>"; "" for none
	}{
		{"connection refused", q(operator.FailureUnavailable, refused), stepRefused},
		{"cookie mismatch", q(operator.FailureUnavailable, fmt.Errorf("authentication failed: %w", handshake.ErrAuthFailed)), stepAuth},
		{"unknown host", q(operator.FailureUnavailable, &net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "nohost", IsNotFound: true}}), stepHost},
		{"HTTP port instead of the cluster port", q(operator.FailureUnavailable, tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), stepNotANode},
		{"other unavailability", q(operator.FailureUnavailable, errors.New("connection reset by peer")), stepUnavailable},
		{"timeout", &operator.QueryError{Kind: operator.KindDiagnostics, Target: target, Failure: operator.FailureTimeout}, stepTimeout},
		{"unknown request key", &operator.QueryError{Kind: operator.KindContinuityLookup, Target: target, Failure: operator.FailureRejected, Reason: "request_key_not_found"}, stepNotFound},
		{"switchover on the standby", sw("switchover_rejected:not_primary:primary@127.0.0.1:4370"), stepSwitchoverNotPrimary},
		{"switchover without a standby", sw("switchover_rejected:standby_not_connected"), stepSwitchoverNotConnected},
		{"switchover, standby behind", sw("switchover_rejected:standby_not_caught_up:epoch_2"), stepSwitchoverNotCaughtUp},
		{"switchover unconfirmed", sw("switchover_rejected:authority_unconfirmed"), stepSwitchoverUnconfirmed},
		{"switchover busy", sw("switchover_rejected:switchover_in_progress"), stepSwitchoverBusy},
		{"switchover refused by the standby", sw("switchover_rejected:standby_refused:lease_held_by:x"), stepSwitchoverFailed},
		{"other refusal", &operator.QueryError{Kind: operator.KindStatus, Target: target, Failure: operator.FailureRejected, Reason: "something_else"}, ""},
		{"bad node name", q(operator.FailureInvalid, errors.New("invalid node name 'x': missing '@' separator")), stepNodeName},
		{"invalid query without target", &operator.QueryError{Kind: operator.KindContinuityLookup, Failure: operator.FailureInvalid, Err: errors.New("request_key_missing")}, ""},
		{"malformed reply", q(operator.FailureDecode, errors.New("bad frame")), stepDecode},
		{"usage error", usageError(errors.New("meshc cluster: --timeout-ms must be a positive integer, got 0")), ""},
		{"plain error", errors.New("tests failed"), ""},
		{"help", flag.ErrHelp, ""},
		{"nil", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := withNextStep(tc.err)
			if tc.err == nil {
				if got != nil {
					t.Fatalf("withNextStep(nil) = %v", got)
				}
				return
			}
			want := tc.err.Error()
			if tc.want != "" {
				want += "; " + tc.want
			}
			if got.Error() != want {
				t.Errorf("message\n got %q\nwant %q", got.Error(), want)
			}
			if exitCode(got) != exitCode(tc.err) {
				t.Errorf("exit code %d, want %d as without the next step", exitCode(got), exitCode(tc.err))
			}
			if !errors.Is(got, tc.err) {
				t.Error("the error with its next step no longer matches the original with errors.Is")
			}
		})
	}
	// Every step names something the operator can act on.
	for _, step := range []string{stepRefused, stepNotANode, stepUnavailable} {
		if !strings.Contains(step, "MESH_CLUSTER_PORT") && !strings.Contains(step, "MESH_NODE_NAME") {
			t.Errorf("step %q names neither MESH_CLUSTER_PORT nor MESH_NODE_NAME", step)
		}
	}
}

// TestErrorNextStepsFromProcess runs meshc against a closed port and an HTTP
// server and checks the one stderr line an operator sees.
func TestErrorNextStepsFromProcess(t *testing.T) {
	httpSrv := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(httpSrv.Close)
	env := []string{"MESH_CLUSTER_COOKIE=" + clusterTestCookie}
	tests := []struct {
		name string
		node string
		code int
		want []string
	}{
		{"closed port", closedNode(t), exitUnreachable, []string{"connection refused", "; " + stepRefused}},
		{"an HTTP port", "web@" + strings.TrimPrefix(httpSrv.URL, "http://"), exitUnreachable, []string{"; " + stepNotANode}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runMeshc(t, t.TempDir(), env, "cluster", "status", tc.node, "--timeout-ms", "3000")
			if res.code != tc.code {
				t.Errorf("exit %d, want %d; stderr %q", res.code, tc.code, res.stderr)
			}
			if !strings.HasPrefix(res.stderr, "error: operator query status target "+tc.node) || strings.Count(res.stderr, "\n") != 1 {
				t.Errorf("stderr is not one error line about %s: %q", tc.node, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stderr, w) {
					t.Errorf("stderr %q lacks %q", res.stderr, w)
				}
			}
		})
	}
}
