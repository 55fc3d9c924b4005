package handshake

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"meshgo.dev/mesh/internal/wire"
)

// Version is the newest protocol version this package speaks, and
// MinVersion the oldest. The version changes whenever what the peers
// exchange after the handshake changes: 2 added the Refused flag to every
// record, 3 the Held/HeldAck exchange (an owner waits for its replica to
// hold a count-2 route's outcome before answering the client) and the
// Handover and HandoverAck messages of a planned switchover, 4 the SyncPart
// message (a snapshot of several frames counts as applied only after its
// last).
//
// The two sides settle on one version: the client offers the newest it
// speaks (Config.Version), and the server answers with the lower of that
// and its own newest. So a node upgraded next to a peer one version behind
// still links, on the older version, and the pair can be upgraded one node
// at a time. A server of version 3, which speaks only its own, refuses a
// newer client's hello instead, naming its version; the client then dials
// again offering that version (PeerVersion). From version 3 on, a hello's
// layout does not change, so that any later version can read it.
const (
	Version    = 4
	MinVersion = 3
)

// DefaultTimeout bounds a whole handshake when Config.Timeout is zero.
const DefaultTimeout = 5 * time.Second

// MaxNameLength is the longest name a peer may advertise, in bytes.
const MaxNameLength = 255

const (
	// exporterLabel names the TLS exporter value both proofs cover.
	exporterLabel = "EXPORTER-mesh-cluster-auth"
	// keySalt separates the MAC key from any other use of the cookie.
	keySalt = "mesh-cluster-auth-v1"
	keyInfo = "handshake mac key"
)

// Config is one side's handshake configuration. It prints with the cookie
// redacted in every fmt verb.
type Config struct {
	// LocalName is this side's name as peers will know it ("name@host:port").
	LocalName string
	// Kind is what this side is; the zero Kind is invalid.
	Kind Kind
	// Cookie is the shared cluster secret. It never appears in errors.
	Cookie []byte
	// Certificate is presented by Server (see NewCertificate); Client ignores it.
	Certificate tls.Certificate
	// Timeout bounds the whole handshake, TLS included; zero means
	// DefaultTimeout. A context deadline that comes sooner wins.
	Timeout time.Duration
	// TLSTimeout, when positive and shorter than Timeout, bounds the TLS
	// part alone: a peer that has not completed TLS by then (one that
	// connected and sent nothing, say) is dropped early. The cookie proof
	// then has the rest of Timeout.
	TLSTimeout time.Duration
	// Version is the newest protocol version this side offers (a client)
	// or accepts (a server), between MinVersion and Version; zero means
	// Version. A client sets it to redial a peer that refused a newer one
	// (PeerVersion).
	Version uint8
	// MinVersion is the oldest protocol version this side links on,
	// between the package's MinVersion and the offered version; zero means
	// the package's MinVersion. Once every node and meshc of a cluster
	// speaks a newer version, raising it keeps an active attacker, who can
	// forge the older peer's refusal that comes before the cookie proof,
	// from pushing a link down to an older version: a server refuses a
	// hello that would settle below it, and a client refuses a server
	// answer below it (ErrBelowMinimum).
	MinVersion uint8
}

// Format prints the Config with the cookie redacted, whatever the verb.
func (c Config) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "handshake.Config{LocalName:%q Kind:%v Cookie:[redacted] Timeout:%v}", c.LocalName, c.Kind, c.Timeout)
}

// LogValue logs the Config with the cookie redacted and no certificate.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("local_name", c.LocalName),
		slog.String("kind", c.Kind.String()),
		slog.String("cookie", "[redacted]"),
		slog.Duration("timeout", c.Timeout),
	)
}

// offer is the newest version c lets its side speak.
func (c Config) offer() uint8 {
	if c.Version == 0 {
		return Version
	}
	return c.Version
}

// floor is the oldest version c lets its side speak.
func (c Config) floor() uint8 {
	if c.MinVersion == 0 {
		return MinVersion
	}
	return c.MinVersion
}

// check reports every problem with c at once.
func (c Config) check(server bool) error {
	var problems []error
	if err := checkName(c.LocalName); err != nil {
		problems = append(problems, fmt.Errorf("LocalName: %w", err))
	}
	if !c.Kind.valid() {
		problems = append(problems, fmt.Errorf("Kind %v is not node, operator or route", c.Kind))
	}
	if len(c.Cookie) == 0 {
		problems = append(problems, errors.New("Cookie is empty"))
	}
	if server && len(c.Certificate.Certificate) == 0 {
		problems = append(problems, errors.New("Certificate is empty (use NewCertificate)"))
	}
	if c.Timeout < 0 {
		problems = append(problems, fmt.Errorf("Timeout %v is negative", c.Timeout))
	}
	if c.TLSTimeout < 0 {
		problems = append(problems, fmt.Errorf("TLSTimeout %v is negative", c.TLSTimeout))
	}
	if c.Version != 0 && (c.Version < MinVersion || c.Version > Version) {
		problems = append(problems, fmt.Errorf("Version %d is outside %d to %d", c.Version, MinVersion, Version))
	} else if c.MinVersion != 0 && (c.MinVersion < MinVersion || c.MinVersion > c.offer()) {
		problems = append(problems, fmt.Errorf("MinVersion %d is outside %d to %d", c.MinVersion, MinVersion, c.offer()))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("handshake config: %w", errors.Join(problems...))
}

// checkName accepts a name that is non-empty, at most MaxNameLength bytes of
// printable UTF-8 without spaces, and contains '@'.
func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("name is empty")
	case len(name) > MaxNameLength:
		return fmt.Errorf("name is %d bytes long (max %d)", len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not valid UTF-8", name)
	case strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return fmt.Errorf("name %q contains a space or an unprintable character", name)
	case !strings.Contains(name, "@"):
		return fmt.Errorf("name %q has no '@' (want name@host[:port])", name)
	}
	return nil
}

// Result is an authenticated connection.
type Result struct {
	// Conn is the TLS connection, with no deadline set. The caller owns it.
	Conn *tls.Conn
	// RemoteName is the name the peer advertised and proved with the cookie.
	RemoteName string
	// RemoteKind is the kind the peer advertised and proved with the cookie.
	RemoteKind Kind
	// Version is the protocol version both sides settled on, between
	// MinVersion and Version: what the session after the handshake speaks.
	Version uint8
}

// Client runs the dialing side of the handshake over raw. On success the
// returned Result owns raw; on any failure raw is closed. The handshake
// ends after min(cfg.Timeout, the ctx deadline), or when ctx is canceled.
func Client(ctx context.Context, raw net.Conn, cfg Config) (Result, error) {
	if err := cfg.check(false); err != nil {
		raw.Close()
		return Result{}, err
	}
	conn := tls.Client(raw, &tls.Config{
		MinVersion: tls.VersionTLS13,
		ServerName: serverName,
		// The server's certificate is ephemeral and self-signed, so there is
		// no chain to verify. Authentication is the cookie proof, which covers
		// this TLS session's exporter value: a man-in-the-middle presenting its
		// own certificate ends up in a different TLS session than the real
		// server, so relaying either side's proof fails.
		InsecureSkipVerify: true,
	})
	return run(ctx, raw, conn, &session{cfg: cfg}, "handshake with")
}

// Server runs the accepting side of the handshake over raw. On success the
// returned Result owns raw; on any failure raw is closed. The handshake
// ends after min(cfg.Timeout, the ctx deadline), or when ctx is canceled.
// Server holds no shared lock: a stalled client delays only its own call.
func Server(ctx context.Context, raw net.Conn, cfg Config) (Result, error) {
	if err := cfg.check(true); err != nil {
		raw.Close()
		return Result{}, err
	}
	conn := tls.Server(raw, &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cfg.Certificate},
		// Sessions are never resumed; tickets would only cost a write.
		SessionTicketsDisabled: true,
	})
	return run(ctx, raw, conn, &session{cfg: cfg, server: true}, "handshake from")
}

// aLongTimeAgo is a deadline in the past, used to abort blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

func run(ctx context.Context, raw net.Conn, conn *tls.Conn, s *session, what string) (Result, error) {
	timeout := s.cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	deadline := start.Add(timeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	s.conn = conn
	s.raw, s.deadline = raw, deadline
	first := deadline
	if t := s.cfg.TLSTimeout; t > 0 && start.Add(t).Before(deadline) {
		first = start.Add(t)
		s.tlsBudget = t
	}
	err := raw.SetDeadline(first)
	if err == nil {
		stop := context.AfterFunc(ctx, func() { raw.SetDeadline(aLongTimeAgo) })
		err = s.run(ctx)
		// If the cancel hook started, it may set its deadline at any moment;
		// the connection cannot be handed out.
		if !stop() && err == nil {
			err = context.Cause(ctx)
		}
	}
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	if err != nil {
		raw.Close()
		budget := deadline.Sub(start)
		if !s.tlsDone && s.tlsBudget > 0 {
			budget = s.tlsBudget
		}
		return Result{}, s.describe(ctx, what, raw, budget, ctxDeadline, err)
	}
	return Result{Conn: conn, RemoteName: s.remote.name, RemoteKind: s.remote.kind, Version: s.version}, nil
}

// describe wraps a failure with the peer's address (and name, once known)
// and says plainly when it was a timeout or a cancellation. budget is the time
// the handshake had; ctxDeadline says the context's deadline set it.
func (s *session) describe(ctx context.Context, what string, raw net.Conn, budget time.Duration, ctxDeadline bool, err error) error {
	peer := "unknown address"
	if a := raw.RemoteAddr(); a != nil {
		peer = a.String()
	}
	if s.remote.name != "" {
		peer = fmt.Sprintf("%s (%s)", s.remote.name, peer)
	}
	timedOut := fmt.Sprintf("handshake timed out after %v: %v", budget.Round(time.Millisecond), err)
	deadlineHit := errors.Is(err, os.ErrDeadlineExceeded)
	// The context ended the handshake if it is done and the failure is its
	// doing (a failure that merely coincides, like a cookie mismatch, is not).
	ctxErr := ctx.Err()
	byCtx := ctxErr != nil && (deadlineHit || errors.Is(err, ctxErr) || errors.Is(err, context.Cause(ctx)))
	switch {
	case byCtx && errors.Is(ctxErr, context.Canceled):
		cause := context.Cause(ctx)
		err = &stopped{msg: "handshake canceled: " + cause.Error(), errs: []error{cause, err}}
	case byCtx || ctxDeadline && deadlineHit:
		// The connection deadline may fire a moment before the context's, or
		// crypto/tls may report the context's error instead of the deadline's.
		err = &stopped{msg: timedOut, errs: []error{os.ErrDeadlineExceeded, context.DeadlineExceeded, err}}
	case deadlineHit:
		err = &stopped{msg: timedOut, errs: []error{err}}
	}
	return fmt.Errorf("%s %s: %w", what, peer, err)
}

// stopped is a handshake cut short by its deadline or its context. Its text
// says which; errors.Is matches the causes (os.ErrDeadlineExceeded for every
// timeout, the context's error when the context ended it) and the step's own
// error.
type stopped struct {
	msg  string
	errs []error
}

func (e *stopped) Error() string   { return e.msg }
func (e *stopped) Unwrap() []error { return e.errs }

// session is one handshake in progress.
type session struct {
	cfg    Config
	server bool
	conn   *tls.Conn
	local  hello
	remote hello
	// version is the one both sides settled on (the proofs cover it), once
	// the hellos are exchanged.
	version uint8

	raw       net.Conn
	deadline  time.Time     // of the whole handshake
	tlsBudget time.Duration // > 0 when TLS had a shorter deadline of its own
	tlsDone   bool
}

func (s *session) run(ctx context.Context) error {
	if err := s.conn.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	s.tlsDone = true
	if s.tlsBudget > 0 {
		// TLS is done: the proof gets the rest of the whole budget. A
		// cancellation that set its past deadline just before this is not
		// lost: ctx is already done then, and that is checked below.
		if err := s.raw.SetDeadline(s.deadline); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
	}
	s.local = hello{fromServer: s.server, version: s.cfg.offer(), kind: s.cfg.Kind, name: s.cfg.LocalName}
	rand.Read(s.local.nonce[:]) // never fails (crypto/rand since Go 1.24)
	if s.server {
		return s.runServer()
	}
	return s.runClient()
}

func (s *session) runClient() error {
	if err := s.send(s.local); err != nil {
		return fmt.Errorf("send client hello: %w", err)
	}
	m, err := s.receive("server hello")
	if err != nil {
		return err
	}
	switch m := m.(type) {
	case hello:
		if !m.fromServer {
			return unexpected("server hello", m)
		}
		if err := checkName(m.name); err != nil {
			return fmt.Errorf("%w: invalid server name: %w", ErrProtocol, err)
		}
		if m.version > s.local.version {
			return fmt.Errorf("%w: server answered with protocol version %d, above the %d offered", ErrProtocol, m.version, s.local.version)
		}
		if floor := s.cfg.floor(); m.version < floor {
			return fmt.Errorf("%w: server %s answered with protocol version %d, below this side's minimum %d", ErrBelowMinimum, m.name, m.version, floor)
		}
		s.remote = m
		s.version = m.version
	case result:
		if m.status == statusOK {
			return unexpected("server hello", m)
		}
		return refusal(m)
	default:
		return unexpected("server hello", m)
	}

	macC, macS, err := s.macs()
	if err != nil {
		return err
	}
	if err := s.send(proof{mac: macC}); err != nil {
		return fmt.Errorf("send proof: %w", err)
	}
	m, err = s.receive("result")
	if err != nil {
		return err
	}
	r, ok := m.(result)
	if !ok {
		return unexpected("result", m)
	}
	if r.status != statusOK {
		return refusal(r)
	}
	if !hmac.Equal(r.mac[:], macS[:]) {
		// Tell the server, so both ends report the mismatch; then give up
		// whether or not the write succeeds.
		s.send(ack{status: statusAuthFailed})
		return fmt.Errorf("server proof does not match: %w", ErrAuthFailed)
	}
	if err := s.send(ack{status: statusOK}); err != nil {
		return fmt.Errorf("send ack: %w", err)
	}
	return nil
}

func (s *session) runServer() error {
	m, err := s.receive("client hello")
	if err != nil {
		if errors.Is(err, ErrProtocol) {
			// Say why before closing, so the client reports something useful.
			s.send(result{status: statusRefused, reason: truncate(err.Error())})
		}
		return err
	}
	h, ok := m.(hello)
	if !ok || h.fromServer {
		return unexpected("client hello", m)
	}
	if err := checkName(h.name); err != nil {
		s.send(result{status: statusRefused, reason: truncate("invalid client name: " + err.Error())})
		return fmt.Errorf("%w: invalid client name: %w", ErrProtocol, err)
	}
	s.remote = h
	// The lower of the two newest versions; decode refused one below
	// MinVersion.
	s.version = min(h.version, s.local.version)
	if floor := s.cfg.floor(); s.version < floor {
		reason := fmt.Sprintf("protocol version %d is below this side's minimum %d", s.version, floor)
		s.send(result{status: statusRefused, reason: reason})
		return fmt.Errorf("%w: client %s offered protocol version %d, below this side's minimum %d", ErrBelowMinimum, h.name, h.version, floor)
	}
	s.local.version = s.version
	if err := s.send(s.local); err != nil {
		return fmt.Errorf("send server hello: %w", err)
	}

	macC, macS, err := s.macs()
	if err != nil {
		return err
	}
	m, err = s.receive("proof")
	if err != nil {
		return err
	}
	p, ok := m.(proof)
	if !ok {
		return unexpected("proof", m)
	}
	if !hmac.Equal(p.mac[:], macC[:]) {
		s.send(result{status: statusAuthFailed, reason: ErrAuthFailed.Error()})
		return fmt.Errorf("client proof does not match: %w", ErrAuthFailed)
	}
	if err := s.send(result{status: statusOK, mac: macS}); err != nil {
		return fmt.Errorf("send result: %w", err)
	}
	m, err = s.receive("ack")
	if err != nil {
		return err
	}
	a, ok := m.(ack)
	if !ok {
		return unexpected("ack", m)
	}
	if a.status != statusOK {
		return fmt.Errorf("client rejected our proof: %w", ErrAuthFailed)
	}
	return nil
}

func (s *session) send(m message) error {
	return wire.WriteFrame(s.conn, m.appendTo(nil))
}

func (s *session) receive(want string) (message, error) {
	b, err := wire.ReadFrame(s.conn, wire.MaxHandshakeFrame)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", want, err)
	}
	m, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", want, err)
	}
	return m, nil
}

// macs returns the client's and the server's expected proofs for this
// session.
func (s *session) macs() (client, server [macSize]byte, err error) {
	state := s.conn.ConnectionState()
	exporter, err := state.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return client, server, fmt.Errorf("tls exporter: %w", err)
	}
	key, err := hkdf.Key(sha256.New, s.cfg.Cookie, []byte(keySalt), keyInfo, 32)
	if err != nil {
		return client, server, fmt.Errorf("derive key: %w", err)
	}
	c, srv := s.local, s.remote
	if s.server {
		c, srv = s.remote, s.local
	}
	return mac(key, "client", s.version, c, srv, exporter), mac(key, "server", s.version, c, srv, exporter), nil
}

// mac is HMAC-SHA256 under key over the transcript: the role label, the
// settled version, both kinds, both names, both nonces and the TLS exporter
// value, each length-prefixed or fixed-size so the encoding is unambiguous.
func mac(key []byte, role string, version uint8, client, server hello, exporter []byte) [macSize]byte {
	var e wire.Encoder
	e.String(role)
	e.U8(version)
	e.U8(uint8(client.kind))
	e.U8(uint8(server.kind))
	e.String(client.name)
	e.String(server.name)
	e.Fixed(client.nonce[:])
	e.Fixed(server.nonce[:])
	e.Fixed(exporter)
	h := hmac.New(sha256.New, key)
	h.Write(e.Bytes())
	var sum [macSize]byte
	h.Sum(sum[:0])
	return sum
}

// refusal turns a failed result from the server into this side's error.
func refusal(r result) error {
	if r.status == statusAuthFailed {
		return fmt.Errorf("server rejected our proof: %w", ErrAuthFailed)
	}
	return fmt.Errorf("%w: %q", ErrRefused, r.reason)
}

func unexpected(want string, got message) error {
	return fmt.Errorf("%w: expected %s, got %s", ErrProtocol, want, messageName(got.appendTo(nil)[0]))
}

func truncate(reason string) string {
	if len(reason) <= maxReason {
		return reason
	}
	return reason[:maxReason]
}
