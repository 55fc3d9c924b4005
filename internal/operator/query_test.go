package operator

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/handshake"
	"meshgo.dev/mesh/internal/handshake/handshaketest"
	"meshgo.dev/mesh/internal/wire"
	"meshgo.dev/mesh/meshtest"
)

const testCookie = "s3cret-cookie-value"

// target is a Target for tests.
type target struct{ name, addr string }

func (t target) Addr() string   { return t.addr }
func (t target) String() string { return t.name }

// fakeNode is an in-process node: a loopback listener whose connections run
// the node side of the handshake and then the given behaviour (Serve by
// default).
type fakeNode struct {
	target
	ln       net.Listener
	wg       sync.WaitGroup
	mu       sync.Mutex // guards hsErrs and kinds
	hsErrs   []error
	kinds    []handshake.Kind
	behavior func(conn net.Conn)
}

func startNode(t *testing.T, src Source, behavior func(conn net.Conn)) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := handshake.NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	n := &fakeNode{target: target{name: "primary@127.0.0.1:" + strconv.Itoa(port), addr: ln.Addr().String()}, ln: ln, behavior: behavior}
	if n.behavior == nil {
		n.behavior = func(conn net.Conn) { Serve(conn, src, time.Minute) } // generous: -race on a busy machine
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.wg.Go(func() {
		for {
			raw, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Go(func() {
				res, err := handshake.Server(ctx, raw, handshake.Config{
					LocalName: n.name, Kind: handshake.KindNode, Cookie: []byte(testCookie),
					Certificate: cert, Timeout: 5 * time.Second,
				})
				n.mu.Lock()
				n.hsErrs = append(n.hsErrs, err)
				n.kinds = append(n.kinds, res.RemoteKind)
				n.mu.Unlock()
				if err != nil {
					return
				}
				defer res.Conn.Close()
				n.behavior(res.Conn)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		ln.Close()
		n.wg.Wait()
	})
	return n
}

// silentListener accepts connections and never writes a byte until the test
// ends.
func silentListener(t *testing.T) target {
	addr := meshtest.SilentListener(t)
	return target{name: "silent@" + addr, addr: addr}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return target{name: "gone@" + addr, addr: addr}
}

func TestQueryEveryKind(t *testing.T) {
	node := startNode(t, goldenSource(), nil)
	for _, k := range []Kind{KindStatus, KindContinuityLookup, KindContinuityList, KindDiagnostics} {
		t.Run(k.String(), func(t *testing.T) {
			q := wire.OperatorQuery{Kind: uint8(k), RequestKey: "order-42"}
			if k != KindContinuityLookup {
				q.RequestKey = ""
			}
			body, err := Query(t.Context(), node, []byte(testCookie), q, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeReply(k, body); err != nil {
				t.Fatalf("decode: %v", err)
			}
		})
	}
	node.mu.Lock()
	defer node.mu.Unlock()
	for _, k := range node.kinds {
		if k != handshake.KindOperator {
			t.Errorf("node saw a client of kind %v, want operator", k)
		}
	}
}

// TestQueryLargeReply proves replies are not capped at a handshake-sized
// frame: 10,000 records (several MiB) arrive whole.
func TestQueryLargeReply(t *testing.T) {
	src := goldenSource()
	src.records = manyRecords(10_000)
	node := startNode(t, src, nil)
	body, err := Query(t.Context(), node, []byte(testCookie), wire.OperatorQuery{Kind: uint8(KindContinuityList)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	l, err := DecodeContinuityList(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Records) != 10_000 || l.TotalRecords != 10_000 || l.Truncated {
		t.Fatalf("got %d records, total %d, truncated %v", len(l.Records), l.TotalRecords, l.Truncated)
	}
	if len(body) <= 1<<20 {
		t.Errorf("body is only %d bytes; the test should cross 1 MiB", len(body))
	}
}

// TestQueryReplyInParts proves a reply split into parts arrives whole and in
// order: byte for byte the body Answer built.
func TestQueryReplyInParts(t *testing.T) {
	src := goldenSource()
	src.records = manyRecords(2_000)
	q := wire.OperatorQuery{Kind: uint8(KindContinuityList)}
	want := Answer(q, src).Body
	const part = 4096
	if len(want) < 10*part {
		t.Fatalf("the body is only %d bytes; the test wants many parts", len(want))
	}
	node := startNode(t, nil, func(conn net.Conn) { serve(conn, src, time.Minute, part) })
	body, err := Query(t.Context(), node, []byte(testCookie), q, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("got %d bytes, want the %d Answer built", len(body), len(want))
	}
	if _, err := DecodeContinuityList(body); err != nil {
		t.Fatal(err)
	}
}

// TestQueryReplyLargerThanAFrame proves a list larger than one frame (the
// 16 MiB a single reply could carry before parts) arrives whole through the
// real Serve.
func TestQueryReplyLargerThanAFrame(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 17 MiB reply")
	}
	src := goldenSource()
	src.records = manyRecords(17)
	big := strings.Repeat("x", 1<<20)
	for i := range src.records {
		src.records[i].Error = big
	}
	node := startNode(t, src, nil)
	body, err := Query(t.Context(), node, []byte(testCookie), wire.OperatorQuery{Kind: uint8(KindContinuityList)}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if len(body) <= wire.MaxFrame {
		t.Fatalf("body is %d bytes; the test should cross one frame (%d)", len(body), wire.MaxFrame)
	}
	l, err := DecodeContinuityList(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Records) != 17 || l.Records[16].Error != big {
		t.Fatalf("got %d records, or the last one's error is not the 1 MiB string", len(l.Records))
	}
}

// TestQueryPartsBroken proves a reply whose parts break off, overrun the
// bound or end in an error reply is an error, never a short body.
func TestQueryPartsBroken(t *testing.T) {
	part := wire.OperatorReplyPart{Body: []byte(`{"records":[`)}
	cutOff := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		wire.WriteMessage(conn, part)
	})
	endless := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		for wire.WriteMessage(conn, wire.OperatorReplyPart{Body: make([]byte, 64<<10)}) == nil {
		}
	})
	errorAfterParts := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		wire.WriteMessage(conn, part)
		wire.WriteMessage(conn, wire.OperatorReply{Error: "request_key_not_found"})
	})
	emptyParts := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		for wire.WriteMessage(conn, wire.OperatorReplyPart{}) == nil {
		}
	})
	list := wire.OperatorQuery{Kind: uint8(KindContinuityList)}
	for _, tc := range []struct {
		name    string
		node    *fakeNode
		failure Failure
		want    string
	}{
		{"cut off", cutOff, FailureUnavailable, " unavailable: read reply: "},
		{"past the bound", endless, FailureDecode, " decode failed: reply body longer than 1048576 bytes"},
		{"error after parts", errorAfterParts, FailureDecode, " decode failed: error reply after 12 bytes of an OK reply's parts"},
		{"empty parts", emptyParts, FailureDecode, " decode failed: empty reply part"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := query(t.Context(), tc.node, []byte(testCookie), list, 10*time.Second, 1<<20)
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Failure != tc.failure {
				t.Fatalf("err = %v (body %d bytes), want a QueryError with failure %d", err, len(body), tc.failure)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("message %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestQueryErrors(t *testing.T) {
	node := startNode(t, goldenSource(), nil)
	garbage := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		wire.WriteFrame(conn, []byte{0xEE, 1, 2})
	})
	wrongMessage := startNode(t, nil, func(conn net.Conn) {
		wire.ReadFrame(conn, wire.MaxFrame)
		wire.WriteMessage(conn, wire.OperatorQuery{})
	})
	hangsUp := startNode(t, nil, func(conn net.Conn) {})
	silent := silentListener(t)
	closed := closedPort(t)

	status := wire.OperatorQuery{Kind: uint8(KindStatus)}
	tests := []struct {
		name    string
		target  Target
		cookie  string
		query   wire.OperatorQuery
		timeout time.Duration
		failure Failure
		want    string // exact message, or a prefix ending in ": "
		is      error  // optional errors.Is target
	}{
		{"connection refused", closed, testCookie, status, 5 * time.Second, FailureUnavailable,
			"operator query status target " + closed.name + " unavailable: dial tcp " + closed.addr + ": ", nil},
		{"wrong cookie", node, "not-the-cookie", status, 5 * time.Second, FailureUnavailable,
			"operator query status target " + node.name + " unavailable: authentication failed: cluster cookie mismatch", handshake.ErrAuthFailed},
		{"node never answers", silent, testCookie, status, 200 * time.Millisecond, FailureTimeout,
			"operator query status target " + silent.name + " timed out after 200ms", nil},
		{"unknown key", node, testCookie, wire.OperatorQuery{Kind: uint8(KindContinuityLookup), RequestKey: "nope"}, 5 * time.Second, FailureRejected,
			"operator query continuity_lookup target " + node.name + " rejected: request_key_not_found", nil},
		{"empty key is refused before dialing", closed, testCookie, wire.OperatorQuery{Kind: uint8(KindContinuityLookup)}, 5 * time.Second, FailureInvalid,
			"operator query continuity_lookup invalid: request_key_missing", nil},
		{"unknown kind is refused before dialing", closed, testCookie, wire.OperatorQuery{Kind: 42}, 5 * time.Second, FailureInvalid,
			"operator query kind_42 invalid: invalid operator query kind 42", nil},
		{"malformed reply", garbage, testCookie, status, 5 * time.Second, FailureDecode,
			"operator query status target " + garbage.name + " decode failed: ", wire.ErrUnknownMessage},
		{"reply of the wrong type", wrongMessage, testCookie, status, 5 * time.Second, FailureDecode,
			"operator query status target " + wrongMessage.name + " decode failed: unexpected wire.OperatorQuery in reply to an operator query", nil},
		{"node hangs up", hangsUp, testCookie, status, 5 * time.Second, FailureUnavailable,
			"operator query status target " + hangsUp.name + " unavailable: read reply: ", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body, err := Query(t.Context(), tc.target, []byte(tc.cookie), tc.query, tc.timeout)
			if err == nil {
				t.Fatalf("no error; body %s", body)
			}
			var qe *QueryError
			if !errors.As(err, &qe) || qe.Failure != tc.failure {
				t.Fatalf("error %q (%T) is not a QueryError with failure %d", err, err, tc.failure)
			}
			msg := err.Error()
			if strings.HasSuffix(tc.want, ": ") {
				if !strings.HasPrefix(msg, tc.want) {
					t.Errorf("message %q does not start with %q", msg, tc.want)
				}
			} else if msg != tc.want {
				t.Errorf("message %q, want %q", msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%q, %v) = false", err, tc.is)
			}
			for _, secret := range []string{testCookie, "not-the-cookie"} {
				if strings.Contains(msg, secret) {
					t.Errorf("message contains the cookie: %q", msg)
				}
			}
		})
	}
}

func TestQueryWrongCookieSeenByNode(t *testing.T) {
	node := startNode(t, goldenSource(), nil)
	_, err := Query(t.Context(), node, []byte("wrong"), wire.OperatorQuery{Kind: uint8(KindStatus)}, 5*time.Second)
	if err == nil {
		t.Fatal("query succeeded with a wrong cookie")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		node.mu.Lock()
		errs := append([]error(nil), node.hsErrs...)
		node.mu.Unlock()
		if len(errs) > 0 {
			if !errors.Is(errs[0], handshake.ErrAuthFailed) {
				t.Fatalf("node handshake error = %v, want ErrAuthFailed", errs[0])
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("node never reported the failed handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestQueryCanceled(t *testing.T) {
	silent := silentListener(t)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := Query(ctx, silent, []byte(testCookie), wire.OperatorQuery{Kind: uint8(KindStatus)}, 10*time.Second)
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Failure != FailureCanceled || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a canceled QueryError", err)
	}
}

func TestServeRejectsNonQuery(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	done := make(chan error, 1)
	go func() { done <- Serve(server, goldenSource(), 5*time.Second) }()
	if err := wire.WriteMessage(client, wire.OperatorReply{OK: true}); err != nil {
		t.Fatal(err)
	}
	frame, err := wire.ReadFrame(client, wire.MaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	m, err := wire.Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	reply := m.(wire.OperatorReply)
	if reply.OK || !strings.HasPrefix(reply.Error, "invalid operator query: ") {
		t.Errorf("reply = %+v", reply)
	}
	if err := <-done; err == nil {
		t.Error("Serve returned nil for a non-query frame")
	}
}

// A node of protocol version 3 refuses a newer client's hello, naming its
// version, and links when dialed again offering 3. Query does that second
// dial by itself.
func TestQueryRedialsANodeOfAnOlderProtocol(t *testing.T) {
	ln, cert := handshaketest.Listen(t)
	node := target{name: "primary@" + ln.Addr().String(), addr: ln.Addr().String()}
	settled := make(chan uint8, 1)
	go func() {
		// First connection: the refusal of a version-3 build.
		raw, err := ln.Accept()
		if err != nil {
			return
		}
		if _, err := handshaketest.RefuseAsVersion3(raw, cert); err != nil {
			t.Error(err)
			return
		}

		// Second connection: a node that speaks 3 at most.
		raw, err = ln.Accept()
		if err != nil {
			return
		}
		res, err := handshake.Server(t.Context(), raw, handshake.Config{
			LocalName: node.name, Kind: handshake.KindNode, Cookie: []byte(testCookie),
			Certificate: cert, Timeout: 5 * time.Second, Version: 3,
		})
		if err != nil {
			t.Errorf("second handshake: %v", err)
			return
		}
		settled <- res.Version
		defer res.Conn.Close()
		Serve(res.Conn, goldenSource(), time.Minute)
	}()
	body, err := Query(t.Context(), node, []byte(testCookie), wire.OperatorQuery{Kind: uint8(KindStatus)}, 10*time.Second)
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if _, err := DecodeReply(KindStatus, body); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if v := <-settled; v != 3 {
		t.Fatalf("the second handshake settled on version %d, want 3", v)
	}
}
