package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/operator"
)

// Exit codes of meshc. Scripts rely on them: the numbers never change.
const (
	exitOK          = 0 // success
	exitFailure     = 1 // any other failure
	exitUsage       = 2 // usage: bad flags or arguments, bad node name syntax, no usable cookie
	exitUnreachable = 3 // the node could not be reached, or did not answer in time
	exitAuth        = 4 // authentication failed: the cluster cookie does not match
	exitNotFound    = 5 // the node holds no record for the request key (request_key_not_found)
	exitDisagree    = 6 // meshc cluster status A B: the pair disagrees
)

// exitCodes is the table printed in --help and listed in the docs.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "success (for a pair: the two nodes agree)"},
	{exitFailure, "other failure (a malformed reply, a node-side error)"},
	{exitUsage, "usage: bad flags or arguments, bad node name, no usable cookie"},
	{exitUnreachable, "unreachable: connection refused or broken, or no answer within --timeout-ms"},
	{exitAuth, "authentication failed: the cluster cookie does not match"},
	{exitNotFound, "not found: no record for the request key (request_key_not_found)"},
	{exitDisagree, "the pair disagrees (meshc cluster status A B), or one of the two did not answer"},
}

// writeExitCodes prints the exit code table.
func writeExitCodes(w io.Writer) {
	fmt.Fprintln(w, "Exit codes:")
	for _, c := range exitCodes {
		fmt.Fprintf(w, "  %d  %s\n", c.code, c.meaning)
	}
}

// exitError carries the exit code of an error whose class is not otherwise
// visible (usage errors, a disagreeing pair).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a usage error (exit 2).
func usageError(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: exitUsage, err: err}
}

// exitCode maps the error run returned to the process exit code.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var qe *operator.QueryError
	if errors.As(err, &qe) {
		switch qe.Failure {
		case operator.FailureInvalid:
			return exitUsage
		case operator.FailureTimeout:
			return exitUnreachable
		case operator.FailureUnavailable:
			if errors.Is(qe, handshake.ErrAuthFailed) {
				return exitAuth
			}
			return exitUnreachable
		case operator.FailureRejected:
			if qe.Reason == string(continuity.ReasonRequestKeyNotFound) {
				return exitNotFound
			}
		}
	}
	return exitFailure
}
