package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"meshgo.dev/mesh/internal/continuity"
	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/wire"
)

// Target is the node a query addresses. mesh.NodeName satisfies it; the
// interface exists so this package need not import package mesh, which
// imports this one.
type Target interface {
	// Addr is the host:port to dial.
	Addr() string
	// String is the node name shown in messages.
	String() string
}

// Failure classifies why a query failed; each class has its own message shape
// so an operator (or a script) can tell them apart.
type Failure uint8

// Failure classes.
const (
	// FailureInvalid: the query was refused before connecting.
	FailureInvalid Failure = iota + 1
	// FailureUnavailable: the node could not be reached or authenticated, or
	// the connection broke before a reply arrived.
	FailureUnavailable
	// FailureTimeout: no reply within the timeout.
	FailureTimeout
	// FailureRejected: the node answered with an error reason.
	FailureRejected
	// FailureDecode: the reply was not a well-formed document.
	FailureDecode
	// FailureCanceled: the caller's context ended first.
	FailureCanceled
)

// QueryError is the error of a failed operator query. Its message has the
// shape "operator query <kind> [target <t>] <failure>: <detail>", for example
//
//	operator query status target a@127.0.0.1:4370 unavailable: dial tcp 127.0.0.1:4370: connect: connection refused
//	operator query status target a@127.0.0.1:4370 unavailable: authentication failed: cluster cookie mismatch
//	operator query status target a@127.0.0.1:4370 timed out after 5000ms
//	operator query continuity_lookup target a@127.0.0.1:4370 rejected: request_key_not_found
//	operator query continuity_lookup invalid: request_key_missing
type QueryError struct {
	Kind    Kind
	Target  string        // "" when the failure does not depend on the target
	Failure Failure       // the failure class
	Timeout time.Duration // the timeout that expired, for FailureTimeout
	Reason  string        // the node's reason, for FailureRejected
	Err     error         // the underlying error, if any
}

// Error renders the message described on QueryError.
func (e *QueryError) Error() string {
	var b strings.Builder
	b.WriteString("operator query ")
	b.WriteString(e.Kind.String())
	if e.Target != "" {
		b.WriteString(" target ")
		b.WriteString(e.Target)
	}
	switch e.Failure {
	case FailureInvalid:
		b.WriteString(" invalid")
	case FailureUnavailable:
		b.WriteString(" unavailable")
	case FailureTimeout:
		fmt.Fprintf(&b, " timed out after %dms", e.Timeout.Milliseconds())
	case FailureRejected:
		b.WriteString(" rejected: ")
		b.WriteString(e.Reason)
		return b.String()
	case FailureDecode:
		b.WriteString(" decode failed")
	case FailureCanceled:
		b.WriteString(" canceled")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *QueryError) Unwrap() error { return e.Err }

// authError replaces the handshake's wording for a cookie mismatch with the
// one operators see; it still matches handshake.ErrAuthFailed via errors.Is.
type authError struct{ err error }

func (e authError) Error() string { return "authentication failed: cluster cookie mismatch" }
func (e authError) Unwrap() error { return e.err }

// Validate checks q the way the node would before anything is sent: the kind
// must be known and a lookup needs a request key. Errors are *QueryError with
// FailureInvalid and no target, e.g.
// "operator query continuity_lookup invalid: request_key_missing".
func Validate(q wire.OperatorQuery) error {
	kind := Kind(q.Kind)
	switch {
	case !kind.Valid():
		return &QueryError{Kind: kind, Failure: FailureInvalid, Err: fmt.Errorf("invalid operator query kind %d", q.Kind)}
	case kind == KindContinuityLookup && q.RequestKey == "":
		return &QueryError{Kind: kind, Failure: FailureInvalid, Err: errors.New(string(continuity.ReasonRequestKeyMissing))}
	}
	return nil
}

// LocalName is the name meshc presents in the handshake:
// "meshc@<hostname>", or "meshc@local" when the hostname is unknown. Nodes
// treat operator clients as transient and never add them to membership.
func LocalName() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "local"
	}
	return "meshc@" + h
}

// Query sends q to target and returns the JSON body of the node's OK reply.
// It dials target.Addr(), authenticates with cookie as an operator client,
// writes one query frame, reads the reply (one frame, or parts that end with
// the reply frame, at most MaxReplyBody bytes of body in all) and closes the
// connection. timeout bounds the whole exchange; ctx may end it
// earlier. Every error is a *QueryError. The body is returned as received;
// pass it to DecodeReply before trusting it.
func Query(ctx context.Context, target Target, cookie []byte, q wire.OperatorQuery, timeout time.Duration) ([]byte, error) {
	return query(ctx, target, cookie, q, timeout, MaxReplyBody)
}

// query is Query with the bound on the reply's body as a parameter.
func query(ctx context.Context, target Target, cookie []byte, q wire.OperatorQuery, timeout time.Duration, maxReply int) ([]byte, error) {
	kind := Kind(q.Kind)
	fail := func(f Failure, err error) *QueryError {
		return &QueryError{Kind: kind, Target: target.String(), Failure: f, Timeout: timeout, Err: err}
	}
	if err := Validate(q); err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fail(FailureInvalid, fmt.Errorf("timeout must be positive, got %v", timeout))
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	// classify turns an I/O error into a timeout or cancellation when the
	// context explains it, and into FailureUnavailable otherwise.
	classify := func(err error) *QueryError {
		switch {
		case parent.Err() != nil:
			return fail(FailureCanceled, context.Cause(parent))
		case ctx.Err() != nil || isTimeout(err):
			return fail(FailureTimeout, nil)
		}
		return fail(FailureUnavailable, err)
	}

	// The client presents no certificate: the cookie proof, bound to this
	// TLS session, is what authenticates both ends.
	cfg := handshake.Config{LocalName: LocalName(), Kind: handshake.KindOperator, Cookie: cookie}
	res, err := dialNode(ctx, target, cfg, deadline)
	if v, older := handshake.PeerVersion(err); older {
		// A node on an older protocol version refused this one's hello,
		// naming its own: dial again offering it.
		cfg.Version = v
		res, err = dialNode(ctx, target, cfg, deadline)
	}
	var derr dialError
	switch {
	case errors.As(err, &derr):
		return nil, classify(derr.err)
	case errors.Is(err, handshake.ErrAuthFailed):
		return nil, fail(FailureUnavailable, authError{err})
	case err != nil:
		return nil, classify(err) // the handshake's errors name the peer
	}
	conn := res.Conn
	defer conn.Close()
	// Interrupt any blocked read or write when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if res.RemoteKind != handshake.KindNode {
		return nil, fail(FailureUnavailable, fmt.Errorf("%s answered as %s, not as a node", target.Addr(), res.RemoteName))
	}
	// The handshake may have cleared the deadline it set for itself.
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, classify(err)
	}
	if err := wire.WriteMessage(conn, q); err != nil {
		return nil, classify(fmt.Errorf("send query: %w", err))
	}
	body, reply, err := readReply(conn, maxReply)
	if err != nil {
		if re := (malformedReply{}); errors.Is(err, wire.ErrFrameTooLarge) || errors.As(err, &re) {
			return nil, fail(FailureDecode, err)
		}
		return nil, classify(fmt.Errorf("read reply: %w", err))
	}
	if !reply.OK {
		qe := fail(FailureRejected, nil)
		qe.Reason = reply.Error
		if qe.Reason == "" {
			qe.Reason = "no reason given"
		}
		return nil, qe
	}
	return body, nil
}

// dialNode connects to target and runs the client side of the handshake
// with cfg, both before deadline or the end of ctx, whichever comes first
// (the handshake bounds itself by both). A failed connection is a
// dialError; a failed handshake is the handshake's error. On success the
// caller owns the connection.
func dialNode(ctx context.Context, target Target, cfg handshake.Config, deadline time.Time) (handshake.Result, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", target.Addr())
	if err != nil {
		return handshake.Result{}, dialError{err}
	}
	cfg.Timeout = time.Until(deadline)
	if cfg.Timeout <= 0 {
		raw.Close()
		return handshake.Result{}, dialError{os.ErrDeadlineExceeded}
	}
	return handshake.Client(ctx, raw, cfg) // closes raw on failure
}

// dialError is a connection to a node that failed before any handshake.
type dialError struct{ err error }

func (e dialError) Error() string { return e.err.Error() }
func (e dialError) Unwrap() error { return e.err }

// malformedReply marks a reply that arrived but breaks the protocol: a frame
// that does not decode, a message other than a reply or its parts, an error
// reply after parts, or a body past the bound.
type malformedReply struct{ err error }

func (e malformedReply) Error() string { return e.err.Error() }
func (e malformedReply) Unwrap() error { return e.err }

// readReply reads a reply: any parts, then the reply frame. It returns the
// whole body (the parts' and the reply's, concatenated) and the reply. A
// body longer than limit stops the read.
func readReply(r io.Reader, limit int) ([]byte, wire.OperatorReply, error) {
	var body []byte
	for {
		frame, err := wire.ReadFrame(r, wire.MaxFrame)
		if err != nil {
			return nil, wire.OperatorReply{}, err
		}
		m, err := wire.Decode(frame)
		if err != nil {
			return nil, wire.OperatorReply{}, malformedReply{err}
		}
		switch m := m.(type) {
		case wire.OperatorReplyPart:
			if len(m.Body) == 0 {
				return nil, wire.OperatorReply{}, malformedReply{errors.New("empty reply part")}
			}
			if len(body)+len(m.Body) > limit {
				return nil, wire.OperatorReply{}, malformedReply{fmt.Errorf("reply body longer than %d bytes", limit)}
			}
			body = append(body, m.Body...)
		case wire.OperatorReply:
			switch {
			case len(body) == 0:
				return m.Body, m, nil // one frame, as every reply that fits one
			case !m.OK:
				return nil, wire.OperatorReply{}, malformedReply{fmt.Errorf("error reply after %d bytes of an OK reply's parts", len(body))}
			case len(body)+len(m.Body) > limit:
				return nil, wire.OperatorReply{}, malformedReply{fmt.Errorf("reply body longer than %d bytes", limit)}
			}
			return append(body, m.Body...), m, nil
		default:
			return nil, wire.OperatorReply{}, malformedReply{fmt.Errorf("unexpected %T in reply to an operator query", m)}
		}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}
