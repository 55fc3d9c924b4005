package handshake

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"meshgo.dev/mesh/internal/wire"
)

const (
	primaryName = "primary@127.0.0.1:4370"
	standbyName = "standby@[::1]:4371"
	cookie      = "correct horse battery staple"
)

var testCert = sync.OnceValues(NewCertificate)

func certificate(t testing.TB) tls.Certificate {
	t.Helper()
	cert, err := testCert()
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func config(t testing.TB, name string, kind Kind, secret string) Config {
	return Config{LocalName: name, Kind: kind, Cookie: []byte(secret), Certificate: certificate(t), Timeout: 5 * time.Second}
}

// tcpPair returns the two ends of a fresh loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func pipePair(t testing.TB) (client, server net.Conn) {
	client, server = net.Pipe()
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

var transports = map[string]func(testing.TB) (net.Conn, net.Conn){"tcp": tcpPair, "pipe": pipePair}

type outcome struct {
	res Result
	err error
}

// handshake runs Server and Client concurrently on the two ends.
func handshake(ctx context.Context, craw, sraw net.Conn, ccfg, scfg Config) (client, server outcome) {
	done := make(chan outcome, 1)
	go func() {
		res, err := Server(ctx, sraw, scfg)
		done <- outcome{res, err}
	}()
	res, err := Client(ctx, craw, ccfg)
	return outcome{res, err}, <-done
}

func TestHandshakeSuccess(t *testing.T) {
	for tname, pair := range transports {
		for _, kind := range []Kind{KindNode, KindOperator, KindRoute} {
			t.Run(tname+"/"+kind.String(), func(t *testing.T) {
				craw, sraw := pair(t)
				c, s := handshake(t.Context(), craw, sraw, config(t, standbyName, kind, cookie), config(t, primaryName, KindNode, cookie))
				if c.err != nil || s.err != nil {
					t.Fatalf("client: %v; server: %v", c.err, s.err)
				}
				if c.res.RemoteName != primaryName || c.res.RemoteKind != KindNode {
					t.Errorf("client sees %q/%v, want %q/node", c.res.RemoteName, c.res.RemoteKind, primaryName)
				}
				if s.res.RemoteName != standbyName || s.res.RemoteKind != kind {
					t.Errorf("server sees %q/%v, want %q/%v", s.res.RemoteName, s.res.RemoteKind, standbyName, kind)
				}
				if v := c.res.Conn.ConnectionState().Version; v != tls.VersionTLS13 {
					t.Errorf("TLS version %x, want 1.3", v)
				}
				exchange(t, c.res.Conn, s.res.Conn)
			})
		}
	}
}

// exchange proves the authenticated connection carries session frames both
// ways.
func exchange(t *testing.T, client, server net.Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		b, err := wire.ReadFrame(server, wire.MaxFrame)
		if err == nil && string(b) != "ping" {
			err = fmt.Errorf("server read %q", b)
		}
		if err == nil {
			err = wire.WriteFrame(server, []byte("pong"))
		}
		errc <- err
	}()
	if err := wire.WriteFrame(client, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	b, err := wire.ReadFrame(client, wire.MaxFrame)
	if err != nil || string(b) != "pong" {
		t.Fatalf("client read %q, %v", b, err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// The handshake deadline must not outlive the handshake: an idle session is
// the heartbeat's business, not ours.
func TestDeadlineClearedAfterSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		craw, sraw := net.Pipe()
		defer craw.Close()
		defer sraw.Close()
		ccfg, scfg := config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie)
		ccfg.Timeout, scfg.Timeout = time.Second, time.Second
		c, s := handshake(t.Context(), craw, sraw, ccfg, scfg)
		if c.err != nil || s.err != nil {
			t.Fatalf("client: %v; server: %v", c.err, s.err)
		}
		time.Sleep(time.Minute) // fake time: long past both deadlines
		exchange(t, c.res.Conn, s.res.Conn)
	})
}

func TestWrongCookie(t *testing.T) {
	for tname, pair := range transports {
		t.Run(tname, func(t *testing.T) {
			craw, sraw := pair(t)
			other := "an entirely different cookie"
			c, s := handshake(t.Context(), craw, sraw, config(t, standbyName, KindNode, other), config(t, primaryName, KindNode, cookie))
			for side, err := range map[string]error{"client": c.err, "server": s.err} {
				if !errors.Is(err, ErrAuthFailed) {
					t.Errorf("%s: %v, want ErrAuthFailed", side, err)
					continue
				}
				if msg := err.Error(); strings.Contains(msg, cookie) || strings.Contains(msg, other) {
					t.Errorf("%s error leaks a cookie: %s", side, msg)
				}
				t.Logf("%s: %v", side, err)
			}
			if !strings.Contains(s.err.Error(), standbyName) {
				t.Errorf("server error does not name the client: %v", s.err)
			}
		})
	}
}

// A client that connects and says nothing costs the server one goroutine
// until the configured timeout, and nothing else.
func TestSilentClientTimesOut(t *testing.T) {
	for _, stage := range []string{"before tls", "after tls"} {
		t.Run(stage, func(t *testing.T) {
			craw, sraw := tcpPair(t)
			if stage == "after tls" {
				go tls.Client(craw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}).Handshake()
			}
			scfg := config(t, primaryName, KindNode, cookie)
			scfg.Timeout = 200 * time.Millisecond
			start := time.Now()
			_, err := Server(t.Context(), sraw, scfg)
			elapsed := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "handshake timed out") {
				t.Fatalf("Server = %v, want a timeout wrapping os.ErrDeadlineExceeded", err)
			}
			if elapsed < 190*time.Millisecond || elapsed > time.Second {
				t.Fatalf("Server gave up after %v, want about 200ms", elapsed)
			}
			t.Logf("after %v: %v", elapsed.Round(time.Millisecond), err)
		})
	}
}

// TestTLSTimeoutDropsSilentClientsEarly: with a TLSTimeout, a client that
// sends nothing is dropped when it ends, while a client that completed TLS
// and then stalls keeps the whole Timeout; a normal handshake is unaffected.
func TestTLSTimeoutDropsSilentClientsEarly(t *testing.T) {
	for _, tt := range []struct {
		stage     string
		want, max time.Duration
	}{
		{"before tls", 100 * time.Millisecond, 250 * time.Millisecond},
		{"after tls", 400 * time.Millisecond, 2 * time.Second},
	} {
		t.Run(tt.stage, func(t *testing.T) {
			craw, sraw := tcpPair(t)
			if tt.stage == "after tls" {
				go tls.Client(craw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}).Handshake()
			}
			scfg := config(t, primaryName, KindNode, cookie)
			scfg.Timeout, scfg.TLSTimeout = 400*time.Millisecond, 100*time.Millisecond
			start := time.Now()
			_, err := Server(t.Context(), sraw, scfg)
			elapsed := time.Since(start)
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("Server = %v, want a timeout", err)
			}
			if elapsed < tt.want-10*time.Millisecond || elapsed > tt.max {
				t.Fatalf("Server gave up after %v, want about %v", elapsed, tt.want)
			}
			if !strings.Contains(err.Error(), "handshake timed out after "+tt.want.String()) {
				t.Fatalf("error %q does not name the budget %v", err, tt.want)
			}
		})
	}
	craw, sraw := tcpPair(t)
	scfg := config(t, primaryName, KindNode, cookie)
	scfg.TLSTimeout = time.Second
	c, s := handshake(t.Context(), craw, sraw, config(t, standbyName, KindNode, cookie), scfg)
	if c.err != nil || s.err != nil {
		t.Fatalf("client: %v; server: %v", c.err, s.err)
	}
	exchange(t, c.res.Conn, s.res.Conn)
}

func TestStalledPeersDoNotBlockOthers(t *testing.T) {
	stallCtx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const stalled = 3
	stalledDone := make(chan error, stalled)
	for range stalled {
		_, sraw := tcpPair(t)
		scfg := config(t, primaryName, KindNode, cookie)
		scfg.Timeout = time.Minute // only the cancel below may end these
		go func() {
			_, err := Server(stallCtx, sraw, scfg)
			stalledDone <- err
		}()
	}

	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 5 {
		craw, sraw := tcpPair(t)
		wg.Go(func() {
			c, s := handshake(t.Context(), craw, sraw, config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie))
			errs <- errors.Join(c.err, s.err)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("handshake beside stalled ones: %v", err)
		}
	}
	select {
	case err := <-stalledDone:
		t.Fatalf("a stalled handshake ended early: %v", err)
	default:
	}
	cancel()
	for range stalled {
		if err := <-stalledDone; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "handshake canceled") {
			t.Fatalf("stalled handshake after cancel: %v", err)
		}
	}
}

func TestClientTimeouts(t *testing.T) {
	t.Run("config timeout", func(t *testing.T) {
		craw, _ := tcpPair(t) // the server end never answers
		ccfg := config(t, standbyName, KindNode, cookie)
		ccfg.Timeout = 150 * time.Millisecond
		_, err := Client(t.Context(), craw, ccfg)
		if !errors.Is(err, os.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "handshake timed out after 150ms") {
			t.Fatalf("Client = %v", err)
		}
	})
	t.Run("context deadline sooner", func(t *testing.T) {
		craw, _ := tcpPair(t)
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := Client(ctx, craw, config(t, standbyName, KindNode, cookie))
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Client = %v, want os.ErrDeadlineExceeded and context.DeadlineExceeded", err)
		}
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Fatalf("Client took %v with a 100ms context", elapsed)
		}
	})
}

// fakePeer is the far end of a handshake driven by hand, to make a peer
// misbehave in ways the real code never does.
type fakePeer struct {
	*session
}

func fakeClient(t *testing.T, raw net.Conn, cfg Config) fakePeer {
	t.Helper()
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
	if err := conn.Handshake(); err != nil {
		t.Error(err)
	}
	s := &session{cfg: cfg, conn: conn, version: Version}
	s.local = hello{version: Version, kind: cfg.Kind, name: cfg.LocalName}
	return fakePeer{s}
}

func fakeServer(t *testing.T, raw net.Conn, cfg Config) fakePeer {
	t.Helper()
	conn := tls.Server(raw, &tls.Config{Certificates: []tls.Certificate{cfg.Certificate}, MinVersion: tls.VersionTLS13})
	if err := conn.Handshake(); err != nil {
		t.Error(err)
	}
	s := &session{cfg: cfg, conn: conn, server: true, version: Version}
	s.local = hello{fromServer: true, version: Version, kind: cfg.Kind, name: cfg.LocalName}
	return fakePeer{s}
}

func (p fakePeer) expect(t *testing.T, want string) message {
	t.Helper()
	m, err := p.receive(want)
	if err != nil {
		t.Errorf("fake peer: %v", err)
	}
	return m
}

func TestHugeLengthPrefix(t *testing.T) {
	t.Run("to server", func(t *testing.T) {
		craw, sraw := tcpPair(t)
		go func() {
			p := fakeClient(t, craw, config(t, standbyName, KindNode, cookie))
			p.conn.Write([]byte{0xFF, 0xFF, 0xFF, 0xFF})
		}()
		var err error
		perCall := allocated(func() { _, err = Server(t.Context(), sraw, config(t, primaryName, KindNode, cookie)) })
		if !errors.Is(err, wire.ErrFrameTooLarge) || !strings.Contains(err.Error(), "frame too large: 4294967295 bytes (max 4096)") {
			t.Fatalf("Server = %v, want ErrFrameTooLarge", err)
		}
		// Both TLS handshakes run in this window; a 4 GiB buffer would not fit.
		if perCall > 8<<20 {
			t.Fatalf("the handshake allocated %d bytes", perCall)
		}
	})
	t.Run("to client", func(t *testing.T) {
		craw, sraw := tcpPair(t)
		go func() {
			p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
			p.expect(t, "client hello")
			p.conn.Write([]byte{0x00, 0x00, 0x00, 0x01}) // 16 MiB: fine for a session, not for a handshake
		}()
		_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
		if !errors.Is(err, wire.ErrFrameTooLarge) || !strings.Contains(err.Error(), "16777216 bytes (max 4096)") {
			t.Fatalf("Client = %v, want ErrFrameTooLarge", err)
		}
	})
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A man-in-the-middle without the cookie terminates TLS on both sides and
// forwards every handshake frame unchanged. The proofs are bound to each TLS
// session's exporter, so both ends must refuse.
func TestRelayingManInTheMiddleFails(t *testing.T) {
	craw, mitmFront := pipePair(t)
	mitmBack, sraw := pipePair(t)
	mitmCert, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		front := tls.Server(mitmFront, &tls.Config{Certificates: []tls.Certificate{mitmCert}, MinVersion: tls.VersionTLS13})
		back := tls.Client(mitmBack, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})
		if front.Handshake() != nil || back.Handshake() != nil {
			return
		}
		go func() { io.Copy(back, front); back.Close() }()
		io.Copy(front, back)
		front.Close()
	}()
	done := make(chan outcome, 1)
	go func() {
		res, err := Server(t.Context(), sraw, config(t, primaryName, KindNode, cookie))
		done <- outcome{res, err}
	}()
	_, cerr := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	s := <-done
	if !errors.Is(s.err, ErrAuthFailed) {
		t.Errorf("server behind a relay: %v, want ErrAuthFailed", s.err)
	}
	if !errors.Is(cerr, ErrAuthFailed) {
		t.Errorf("client behind a relay: %v, want ErrAuthFailed", cerr)
	}
}

// A server that cannot produce the right proof (it does not know the cookie)
// is caught by the client, which tells the server so both ends report it.
func TestClientCatchesBadServerProof(t *testing.T) {
	craw, sraw := tcpPair(t)
	ackc := make(chan message, 1)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, "guessed"))
		p.remote, _ = p.expect(t, "client hello").(hello)
		p.send(p.local)
		p.expect(t, "proof")
		p.send(result{status: statusOK, mac: [macSize]byte{1, 2, 3}})
		ackc <- p.expect(t, "ack")
	}()
	_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "server proof does not match") {
		t.Fatalf("Client = %v, want ErrAuthFailed", err)
	}
	if a, ok := (<-ackc).(ack); !ok || a.status != statusAuthFailed {
		t.Fatalf("client's last word was %#v, want a failed ack", a)
	}
}

func TestServerReportsClientRejection(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeClient(t, craw, config(t, standbyName, KindNode, cookie))
		p.send(p.local)
		p.remote, _ = p.expect(t, "server hello").(hello)
		macC, _, err := p.macs()
		if err != nil {
			t.Error(err)
		}
		p.send(proof{mac: macC})
		p.expect(t, "result")
		p.send(ack{status: statusAuthFailed})
	}()
	_, err := Server(t.Context(), sraw, config(t, primaryName, KindNode, cookie))
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "client rejected our proof") {
		t.Fatalf("Server = %v, want ErrAuthFailed", err)
	}
}

func TestServerRefusesBadHello(t *testing.T) {
	tests := []struct {
		name   string
		hello  []byte
		reason string
	}{
		{"version below the oldest", []byte{tagClientHello, MinVersion - 1, 0xEE}, fmt.Sprintf("unsupported protocol version %d (this side speaks %d to %d)", MinVersion-1, MinVersion, Version)},
		{"unknown kind in a newer version's hello", []byte{tagClientHello, Version + 1, 0xEE}, "unknown kind 238"},
		{"unknown kind", hello{version: Version, kind: 9, name: standbyName}.appendTo(nil), "unknown kind 9"},
		{"name without @", hello{version: Version, kind: KindNode, name: "standby"}.appendTo(nil), "invalid client name"},
		{"name with newline", hello{version: Version, kind: KindNode, name: "a@b\nforged log line"}.appendTo(nil), "invalid client name"},
		{"proof first", proof{}.appendTo(nil), "expected client hello, got proof"},
		{"trailing byte", append(hello{version: Version, kind: KindNode, name: standbyName}.appendTo(nil), 0), "trailing bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			craw, sraw := tcpPair(t)
			got := make(chan message, 1)
			go func() {
				p := fakeClient(t, craw, config(t, standbyName, KindNode, cookie))
				wire.WriteFrame(p.conn, tt.hello)
				m, _ := p.receive("result")
				got <- m
			}()
			_, err := Server(t.Context(), sraw, config(t, primaryName, KindNode, cookie))
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("Server = %v, want ErrProtocol", err)
			}
			if tt.name == "proof first" {
				return // no refusal is owed to a client that skipped its hello
			}
			r, ok := (<-got).(result)
			if !ok || r.status != statusRefused || !strings.Contains(r.reason, tt.reason) {
				t.Fatalf("client got %#v, want a refusal mentioning %q", r, tt.reason)
			}
		})
	}
}

func TestClientReportsRefusal(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
		p.expect(t, "client hello")
		p.send(result{status: statusRefused, reason: "unsupported protocol version 1 (this side speaks 2)"})
	}()
	_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "this side speaks 2") {
		t.Fatalf("Client = %v, want ErrRefused with the server's reason", err)
	}
}

func TestClientRejectsEarlyResult(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
		p.expect(t, "client hello")
		p.send(result{status: statusOK})
	}()
	_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "expected server hello, got result") {
		t.Fatalf("Client = %v, want ErrProtocol", err)
	}
}

func TestClientRejectsBadServerName(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
		p.expect(t, "client hello")
		p.local.name = strings.Repeat("x", MaxNameLength) + "@h"
		p.send(p.local)
	}()
	_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), "invalid server name") {
		t.Fatalf("Client = %v, want ErrProtocol for the server name", err)
	}
}

func TestConfigProblemsReportedTogether(t *testing.T) {
	raw, _ := pipePair(t)
	_, err := Server(t.Context(), raw, Config{LocalName: "no-at-sign", Timeout: -1})
	if err == nil {
		t.Fatal("Server accepted an empty config")
	}
	for _, want := range []string{"LocalName", "Kind kind(0)", "Cookie is empty", "Certificate is empty", "Timeout -1ns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config error %q does not mention %q", err, want)
		}
	}
	if _, err := raw.Write([]byte{0}); err == nil {
		t.Error("the connection was left open after a config error")
	}
}

func TestConfigRedactsCookie(t *testing.T) {
	cfg := config(t, primaryName, KindNode, cookie)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		if out := fmt.Sprintf(verb, cfg); strings.Contains(out, cookie) || strings.Contains(out, fmt.Sprintf("%x", cookie)) ||
			!strings.Contains(out, "[redacted]") {
			t.Errorf("%s prints %s", verb, out)
		}
	}
}

func TestConfigLogRedactsCookie(t *testing.T) {
	var out bytes.Buffer
	slog.New(slog.NewJSONHandler(&out, nil)).Info("dial", "config", config(t, primaryName, KindNode, cookie))
	if s := out.String(); strings.Contains(s, cookie) || !strings.Contains(s, `"cookie":"[redacted]"`) || strings.Contains(s, "PrivateKey") {
		t.Fatalf("log line: %s", s)
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{
		primaryName:                       true,
		standbyName:                       true,
		"ノード@ホスト:1":                       true,
		"a@" + strings.Repeat("h", 253):   true,
		"a@" + strings.Repeat("h", 254):   false,
		"":                                false,
		"standby":                         false,
		"two words@host":                  false,
		"tab\t@host":                      false,
		"nul\x00@host":                    false,
		"bad\xff@host":                    false,
		"bell\a@host":                     false,
		"rtl\u202e@host":                  false,
		"mesh-operator-query@127.0.0.1:1": true,
	} {
		if err := checkName(name); (err == nil) != ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindNode: "node", KindOperator: "operator", KindRoute: "route", 0: "kind(0)", 200: "kind(200)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

func TestNewCertificate(t *testing.T) {
	a, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewCertificate()
	if err != nil {
		t.Fatal(err)
	}
	leaf := a.Leaf
	if leaf.PublicKeyAlgorithm.String() != "ECDSA" || leaf.SerialNumber.Cmp(b.Leaf.SerialNumber) == 0 || bytes.Equal(a.Certificate[0], b.Certificate[0]) {
		t.Fatalf("certificates are not fresh ECDSA ones with random serials")
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	if validity := leaf.NotAfter.Sub(leaf.NotBefore); validity > 25*time.Hour || time.Now().Before(leaf.NotBefore) {
		t.Fatalf("validity %v from %v", validity, leaf.NotBefore)
	}
}

func BenchmarkHandshake(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	ccfg, scfg := config(b, standbyName, KindNode, cookie), config(b, primaryName, KindNode, cookie)
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		craw, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		sraw, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		c, s := handshake(ctx, craw, sraw, ccfg, scfg)
		if c.err != nil || s.err != nil {
			b.Fatalf("client: %v; server: %v", c.err, s.err)
		}
		c.res.Conn.Close()
		s.res.Conn.Close()
	}
}
