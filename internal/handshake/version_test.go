package handshake

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/wire"
)

// Both sides settle on the lower of their newest versions, report it in
// Result.Version, and the session that follows works.
func TestVersionsSettleOnTheLowerNewest(t *testing.T) {
	tests := []struct {
		client, server uint8 // Config.Version; zero means Version
		want           uint8
	}{
		{0, 0, Version},
		{MinVersion, 0, MinVersion},
		{0, MinVersion, MinVersion},
		{MinVersion, MinVersion, MinVersion},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("client %d server %d", tt.client, tt.server), func(t *testing.T) {
			craw, sraw := tcpPair(t)
			ccfg, scfg := config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie)
			ccfg.Version, scfg.Version = tt.client, tt.server
			c, s := handshake(t.Context(), craw, sraw, ccfg, scfg)
			if c.err != nil || s.err != nil {
				t.Fatalf("client: %v; server: %v", c.err, s.err)
			}
			if c.res.Version != tt.want || s.res.Version != tt.want {
				t.Fatalf("settled on %d (client) and %d (server), want %d", c.res.Version, s.res.Version, tt.want)
			}
			exchange(t, c.res.Conn, s.res.Conn)
		})
	}
}

// A client hello of a version newer than the server's is read (its layout
// is fixed from MinVersion on) and answered with the server's own version,
// which a newer client then speaks.
func TestServerAnswersANewerClientWithItsOwnVersion(t *testing.T) {
	craw, sraw := tcpPair(t)
	got := make(chan message, 1)
	go func() {
		p := fakeClient(t, craw, config(t, standbyName, KindNode, cookie))
		p.local.version = Version + 1
		p.send(p.local)
		m, _ := p.receive("server hello")
		got <- m
	}()
	go Server(t.Context(), sraw, config(t, primaryName, KindNode, cookie))
	h, ok := (<-got).(hello)
	if !ok || !h.fromServer || h.version != Version {
		t.Fatalf("server answered %#v, want its hello at version %d", h, Version)
	}
}

// A server answering with a version above the one the client offered is a
// protocol violation.
func TestClientRejectsAServerHelloAboveItsOffer(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
		p.expect(t, "client hello")
		p.send(p.local) // at Version
	}()
	cfg := config(t, standbyName, KindNode, cookie)
	cfg.Version = MinVersion
	_, err := Client(t.Context(), craw, cfg)
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), fmt.Sprintf("protocol version %d, above the %d offered", Version, MinVersion)) {
		t.Fatalf("Client = %v, want ErrProtocol naming both versions", err)
	}
}

// A server of version 3 speaks only its own and refuses a newer hello with
// the reason below (its words, byte for byte). The client reports which
// version that server speaks, and a second dial offering it links.
func TestClientLearnsTheVersionOfAnOlderServer(t *testing.T) {
	craw, sraw := tcpPair(t)
	go func() {
		p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
		b, err := wire.ReadFrame(p.conn, wire.MaxHandshakeFrame)
		if err != nil || len(b) < 2 {
			t.Errorf("read client hello: %v", err)
			return
		}
		p.send(result{status: statusRefused, reason: fmt.Sprintf(
			"read client hello: handshake protocol violation: unsupported protocol version %d (this side speaks 3)", b[1])})
	}()
	_, err := Client(t.Context(), craw, config(t, standbyName, KindNode, cookie))
	v, ok := PeerVersion(err)
	if !ok || v != 3 {
		t.Fatalf("PeerVersion(%v) = %d, %v; want 3, true", err, v, ok)
	}

	craw, sraw = tcpPair(t)
	ccfg, scfg := config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie)
	ccfg.Version, scfg.Version = v, v
	c, s := handshake(t.Context(), craw, sraw, ccfg, scfg)
	if c.err != nil || s.err != nil || c.res.Version != 3 {
		t.Fatalf("second dial: client %v (version %d); server %v", c.err, c.res.Version, s.err)
	}
}

func TestPeerVersion(t *testing.T) {
	refused := func(reason string) error { return fmt.Errorf("handshake with x: %w: %q", ErrRefused, reason) }
	tests := []struct {
		name string
		err  error
		want uint8
		ok   bool
	}{
		{"version 3 server", refused("read client hello: handshake protocol violation: unsupported protocol version 4 (this side speaks 3)"), 3, true},
		{"a version this side does not speak", refused("unsupported protocol version 4 (this side speaks 2)"), 0, false},
		{"the same version", refused(fmt.Sprintf("unsupported protocol version 9 (this side speaks %d)", Version)), 0, false},
		{"a newer server's range", refused("unsupported protocol version 2 (this side speaks 3 to 4)"), 0, false},
		{"another refusal", refused("invalid client name: name is empty"), 0, false},
		{"not a refusal", fmt.Errorf("%w: unsupported protocol version 4 (this side speaks 3)", ErrProtocol), 0, false},
		{"nil", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if v, ok := PeerVersion(tt.err); v != tt.want || ok != tt.ok {
				t.Fatalf("PeerVersion = %d, %v; want %d, %v", v, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestConfigVersionRange(t *testing.T) {
	for _, v := range []uint8{MinVersion - 1, Version + 1} {
		cfg := config(t, standbyName, KindNode, cookie)
		cfg.Version = v
		if err := cfg.check(false); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("Version %d is outside %d to %d", v, MinVersion, Version)) {
			t.Errorf("Version %d: check = %v", v, err)
		}
	}
}

// A server whose MinVersion is above the version a hello would settle on
// refuses it, saying why; a client whose MinVersion is above the server's
// answer refuses to go on. Both report ErrBelowMinimum, and neither
// handshake gets as far as a proof.
func TestMinVersionRefusesAnOlderLink(t *testing.T) {
	t.Run("server", func(t *testing.T) {
		craw, sraw := tcpPair(t)
		ccfg, scfg := config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie)
		ccfg.Version, scfg.MinVersion = MinVersion, Version
		c, s := handshake(t.Context(), craw, sraw, ccfg, scfg)
		want := fmt.Sprintf("protocol version %d is below this side's minimum %d", MinVersion, Version)
		if !errors.Is(c.err, ErrRefused) || !strings.Contains(c.err.Error(), want) {
			t.Errorf("client: %v; want a refusal saying %q", c.err, want)
		}
		if _, older := PeerVersion(c.err); older {
			t.Errorf("PeerVersion reads the refusal %v as an older server's, which would redial lower", c.err)
		}
		if !errors.Is(s.err, ErrBelowMinimum) || !strings.Contains(s.err.Error(), standbyName) {
			t.Errorf("server: %v; want ErrBelowMinimum naming the client", s.err)
		}
	})
	t.Run("client", func(t *testing.T) {
		craw, sraw := tcpPair(t)
		proofs := make(chan message, 1)
		go func() {
			p := fakeServer(t, sraw, config(t, primaryName, KindNode, cookie))
			p.expect(t, "client hello")
			p.local.version = MinVersion
			p.send(p.local)
			m, _ := p.receive("proof")
			proofs <- m
		}()
		cfg := config(t, standbyName, KindNode, cookie)
		cfg.MinVersion = Version
		_, err := Client(t.Context(), craw, cfg)
		if !errors.Is(err, ErrBelowMinimum) || !strings.Contains(err.Error(), fmt.Sprintf("protocol version %d, below this side's minimum %d", MinVersion, Version)) {
			t.Fatalf("Client = %v, want ErrBelowMinimum naming both versions", err)
		}
		craw.Close()
		if m := <-proofs; m != nil {
			t.Fatalf("the client sent %T after refusing the server's version", m)
		}
	})
	t.Run("at the minimum", func(t *testing.T) {
		craw, sraw := tcpPair(t)
		ccfg, scfg := config(t, standbyName, KindNode, cookie), config(t, primaryName, KindNode, cookie)
		ccfg.MinVersion, scfg.MinVersion = Version, Version
		c, s := handshake(t.Context(), craw, sraw, ccfg, scfg)
		if c.err != nil || s.err != nil || c.res.Version != Version {
			t.Fatalf("client %v (version %d); server %v", c.err, c.res.Version, s.err)
		}
	})
}

func TestConfigMinVersionRange(t *testing.T) {
	tests := []struct {
		version, min uint8
		want         string // "" when valid
	}{
		{0, MinVersion, ""},
		{0, Version, ""},
		{MinVersion, MinVersion, ""},
		{0, MinVersion - 1, fmt.Sprintf("MinVersion %d is outside %d to %d", MinVersion-1, MinVersion, Version)},
		{0, Version + 1, fmt.Sprintf("MinVersion %d is outside %d to %d", Version+1, MinVersion, Version)},
		{MinVersion, Version, fmt.Sprintf("MinVersion %d is outside %d to %d", Version, MinVersion, MinVersion)},
	}
	for _, tt := range tests {
		cfg := config(t, standbyName, KindNode, cookie)
		cfg.Version, cfg.MinVersion = tt.version, tt.min
		err := cfg.check(false)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Version %d MinVersion %d: check = %v, want %q", tt.version, tt.min, err, tt.want)
		}
	}
}
