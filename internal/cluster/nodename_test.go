package cluster

import (
	"errors"
	"testing"
)

func TestNodeNameString(t *testing.T) {
	tests := []struct {
		n          NodeName
		str, addr  string
		wantIsZero bool
	}{
		{NodeName{}, "", ":0", true},
		{NodeName{Name: "primary", Host: "127.0.0.1", Port: 4370}, "primary@127.0.0.1:4370", "127.0.0.1:4370", false},
		{NodeName{Name: "standby", Host: "::1", Port: 4370}, "standby@[::1]:4370", "[::1]:4370", false},
		{NodeName{Name: "web", Host: "node.internal", Port: 1}, "web@node.internal:1", "node.internal:1", false},
	}
	for _, tt := range tests {
		if got := tt.n.String(); got != tt.str {
			t.Errorf("%#v.String() = %q, want %q", tt.n, got, tt.str)
		}
		if got := tt.n.Addr(); got != tt.addr {
			t.Errorf("%#v.Addr() = %q, want %q", tt.n, got, tt.addr)
		}
		if got := tt.n.IsZero(); got != tt.wantIsZero {
			t.Errorf("%#v.IsZero() = %v", tt.n, got)
		}
	}
}

func TestParseNodeName(t *testing.T) {
	tests := []struct {
		in     string
		want   NodeName
		reason string
	}{
		{in: "primary@127.0.0.1:4370", want: NodeName{"primary", "127.0.0.1", 4370}},
		{in: "standby@[::1]:4370", want: NodeName{"standby", "::1", 4370}},
		{in: "a@[fd00::1%eth0]:1", want: NodeName{"a", "fd00::1%eth0", 1}},
		{in: "a@[localhost]:65535", want: NodeName{"a", "localhost", 65535}},
		{in: "web-1@node.internal:080", want: NodeName{"web-1", "node.internal", 80}},

		{in: "a b@h:1", reason: "value cannot contain spaces"},
		{in: "a@h:1 ", reason: "value cannot contain spaces"},
		{in: "a@h\t:1", reason: "value cannot contain spaces"},
		{in: "", reason: "expected name@host:port"},
		{in: "primary", reason: "expected name@host:port"},
		{in: "a@b@h:1", reason: "expected name@host:port"},
		{in: "@h:1", reason: "node name cannot be blank"},
		{in: "a@", reason: "host cannot be blank"},
		{in: "a@:1", reason: "host cannot be blank"},
		{in: "a@[::1]", reason: "IPv6 host must use [addr]:port"},
		{in: "a@[::1", reason: "IPv6 host must use [addr]:port"},
		{in: "a@[]:1", reason: "host cannot be blank"},
		{in: "a@[x]y]:1", reason: "host is invalid"},
		{in: "a@h]:1", reason: "host is invalid"},
		{in: "a@h[:1", reason: "host is invalid"},
		{in: "a@::1:4370", reason: "expected name@host:port"},
		{in: "a@h", reason: "expected name@host:port"},
		{in: "a@h:", reason: "port must be a positive integer"},
		{in: "a@h:0", reason: "port must be a positive integer"},
		{in: "a@h:-1", reason: "port must be a positive integer"},
		{in: "a@h:+1", reason: "port must be a positive integer"},
		{in: "a@h:65536", reason: "port must be a positive integer"},
		{in: "a@[::1]:x", reason: "port must be a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseNodeName(tt.in)
			if tt.reason != "" {
				var nerr *NodeNameError
				if !errors.As(err, &nerr) || nerr.Reason != tt.reason || nerr.Input != tt.in {
					t.Fatalf("ParseNodeName(%q) = %v, %v; want reason %q", tt.in, got, err, tt.reason)
				}
				if want := "invalid node name '" + tt.in + "': " + tt.reason; err.Error() != want {
					t.Errorf("Error() = %q, want %q", err, want)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseNodeName(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in   string
		want NodeName
		err  string
	}{
		{in: "primary@127.0.0.1:4370", want: NodeName{"primary", "127.0.0.1", 4370}},
		{in: "standby@[::1]:4370", want: NodeName{"standby", "::1", 4370}},
		{in: "app@localhost:9", want: NodeName{"app", "localhost", 9}},

		{in: "primary", err: "invalid node name 'primary': missing '@' separator"},
		{in: "", err: "invalid node name '': missing '@' separator"},
		{in: "@h:1", err: "invalid node name '@h:1': empty name part"},
		{in: "a@", err: "invalid node name 'a@': empty host part"},
		{in: "a@:4370", err: "invalid node name 'a@:4370': empty host part"},
		{in: "a@[]:4370", err: "invalid node name 'a@[]:4370': empty host part"},
		{in: "a@[::1:4370", err: "invalid node name 'a@[::1:4370': missing closing ']' for bracketed host"},
		{in: "a@h", err: "invalid node name 'a@h': missing port"},
		{in: "a@h:", err: "invalid node name 'a@h:': missing port"},
		{in: "a@[::1]", err: "invalid node name 'a@[::1]': missing port"},
		{in: "a@[::1]:", err: "invalid node name 'a@[::1]:': missing port"},
		{in: "a@[::1]x:1", err: "invalid node name 'a@[::1]x:1': unexpected characters after bracketed host"},
		{in: "a@::1", err: "invalid node name 'a@::1': IPv6 hosts with ports must use brackets"},
		{in: "a@::1:4370", err: "invalid node name 'a@::1:4370': IPv6 hosts with ports must use brackets"},
		{in: "a@h:0", err: "invalid node name 'a@h:0': port must be a positive integer"},
		{in: "a@h:abc", err: "invalid node name 'a@h:abc': port must be a positive integer"},
		{in: "a@h:70000", err: "invalid node name 'a@h:70000': port must be a positive integer"},
		{in: "a@[::1]:-3", err: "invalid node name 'a@[::1]:-3': port must be a positive integer"},
		{in: "a b@h:1", err: "invalid node name 'a b@h:1': name part contains invalid characters"},
		{in: "a@b@h:1", err: "invalid node name 'a@b@h:1': host part contains invalid characters"},
		{in: "a@h]:1", err: "invalid node name 'a@h]:1': host part contains invalid characters"},
		{in: "a@[x[y]:1", err: "invalid node name 'a@[x[y]:1': host part contains invalid characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParseTarget(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseTarget(%q) = %#v, %v; want %#v", tt.in, got, err, tt.want)
			}
			again, err := ParseNodeName(got.String())
			if err != nil || again != got {
				t.Errorf("target %q does not round-trip through ParseNodeName: %v, %v", tt.in, again, err)
			}
		})
	}
}

func FuzzParseNodeName(f *testing.F) {
	for _, s := range []string{
		"primary@127.0.0.1:4370", "standby@[::1]:4370", "a@[fd00::1%eth0]:1", "a@[localhost]:9",
		"a@h:080", "", "@", "a@", "a@[]:1", "a@[::1]", "a@::1:4370", "a@h:0", "a@h:65536",
		"a b@h:1", "a@b@h:1", "a@[x]y]:1", "[@h:1", "a:b@h:1", "\xff@h:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNodeName(s)
		if err != nil {
			var nerr *NodeNameError
			if !errors.As(err, &nerr) || nerr.Reason == "" {
				t.Fatalf("ParseNodeName(%q) error %v is not a *NodeNameError with a reason", s, err)
			}
			return
		}
		if n.IsZero() || n.Host == "" || n.Port < 1 || n.Port > 65535 {
			t.Fatalf("ParseNodeName(%q) = %#v: incomplete identity", s, n)
		}
		again, err := ParseNodeName(n.String())
		if err != nil || again != n {
			t.Fatalf("ParseNodeName(%q) = %#v; re-parse of %q = %#v, %v", s, n, n.String(), again, err)
		}
		// ParseTarget accepts a subset of what ParseNodeName accepts, so a
		// successful target must agree.
		if tn, err := ParseTarget(s); err == nil && tn != n {
			t.Fatalf("ParseTarget(%q) = %#v, ParseNodeName = %#v", s, tn, n)
		}
	})
}
