package arbiter

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	const pgURL = "postgres://mesh:s3cret@db.internal:5432/mesh?sslmode=require"
	for _, tt := range []struct {
		name, value string
		want        Spec
		err         string // the whole error message when the value is refused
	}{
		{"unset", "", Spec{Kind: KindPeer}, ""},
		{"blank", "  \t", Spec{Kind: KindPeer}, ""},
		{"peer", " peer ", Spec{Kind: KindPeer}, ""},
		{"postgres", pgURL, Spec{Kind: KindPostgres, DSN: pgURL}, ""},
		{"postgresql", "postgresql://db:5432/mesh", Spec{Kind: KindPostgres, DSN: "postgresql://db:5432/mesh"}, ""},
		{"etcd one", "etcd://127.0.0.1:2379", Spec{Kind: KindEtcd, DSN: "etcd://127.0.0.1:2379", Endpoints: []string{"127.0.0.1:2379"}}, ""},
		{"etcd three", "etcd://a:2379,b:2379,[::1]:2379/", Spec{Kind: KindEtcd, DSN: "etcd://a:2379,b:2379,[::1]:2379/", Endpoints: []string{"a:2379", "b:2379", "[::1]:2379"}}, ""},
		{"etcd credentials", "etcd://root:s3cret@a:2379,b:2379", Spec{Kind: KindEtcd, DSN: "etcd://root:s3cret@a:2379,b:2379", Endpoints: []string{"a:2379", "b:2379"}}, ""},
		{"etcd encoded credentials", "etcd://ro%40t:s3c%2Fret@a:2379", Spec{Kind: KindEtcd, DSN: "etcd://ro%40t:s3c%2Fret@a:2379", Endpoints: []string{"a:2379"}}, ""},

		{"unknown word", "Peer", Spec{}, `Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got "Peer"`},
		{"keyword form", "host=db password=s3cret", Spec{}, "Invalid MESH_ARBITER: expected peer, postgres://..., postgresql://... or etcd://host:port[,host:port], got a value that is none of them (not shown: it may hold credentials)"},
		{"other scheme", "mysql://u:s3cret@db/x", Spec{}, `Invalid MESH_ARBITER: unsupported scheme "mysql": expected postgres://, postgresql:// or etcd://`},
		{"postgres bad URL", "postgres://u:s3cret@db:port/x", Spec{}, "Invalid MESH_ARBITER: postgres connection string is not a valid URL (not shown: it may hold credentials)"},
		{"postgres no host", "postgres://u:s3cret@/mesh", Spec{}, "Invalid MESH_ARBITER: [redacted] has no host: both nodes must reach the same server"},
		{"etcd empty", "etcd://", Spec{}, "Invalid MESH_ARBITER: etcd:// needs at least one host:port"},
		{"etcd user only", "etcd://root@a:2379", Spec{}, "Invalid MESH_ARBITER: etcd credentials must be user:password, percent-encoded (not shown)"},
		{"etcd empty password", "etcd://root:@a:2379", Spec{}, "Invalid MESH_ARBITER: etcd credentials must be user:password, percent-encoded (not shown)"},
		{"etcd bad escape", "etcd://root:s3cret%zz@a:2379", Spec{}, "Invalid MESH_ARBITER: etcd credentials must be user:password, percent-encoded (not shown)"},
		{"etcd path", "etcd://root:s3cret@a:2379/x", Spec{}, "Invalid MESH_ARBITER: expected etcd://[user:password@]host:port[,host:port] with nothing else (no path or parameters)"},
		{"etcd credentials bad port", "etcd://root:s3cret@a:0", Spec{}, `Invalid MESH_ARBITER: etcd member "a:0": port must be 1..65535`},
		{"etcd no port", "etcd://a:2379,b", Spec{}, `Invalid MESH_ARBITER: etcd member "b": expected host:port (an IPv6 host in brackets)`},
		{"etcd bad port", "etcd://a:0", Spec{}, `Invalid MESH_ARBITER: etcd member "a:0": port must be 1..65535`},
		{"etcd empty member", "etcd://a:1,,b:2", Spec{}, `Invalid MESH_ARBITER: etcd member "": expected host:port (an IPv6 host in brackets)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSpec(tt.value)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ParseSpec(%q) error %v, want %q", tt.value, err, tt.err)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error holds the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSpec(%q): %v", tt.value, err)
			}
			if got.Kind != tt.want.Kind || got.DSN != tt.want.DSN || !slices.Equal(got.Endpoints, tt.want.Endpoints) {
				t.Fatalf("ParseSpec(%q) = %#v, want %#v", tt.value, got, tt.want)
			}
		})
	}
}

// A Spec holding a password never shows it, whatever prints it.
func TestSpecNeverShowsTheDSN(t *testing.T) {
	s, err := ParseSpec("postgres://mesh:s3cret@db:5432/mesh")
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(s)
	var log strings.Builder
	slog.New(slog.NewJSONHandler(&log, nil)).Info("boot", "arbiter", s, "dsn", s.DSN)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%v", s.DSN), string(js), log.String()} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, "mesh:") {
			t.Errorf("output holds credentials: %s", out)
		}
	}
	if s.String() != "postgres://db:5432" {
		t.Errorf("String() = %q", s.String())
	}
	if string(s.DSN) != "postgres://mesh:s3cret@db:5432/mesh" {
		t.Errorf("string(DSN) does not give back the connection string: %q", string(s.DSN))
	}
	c, err := ParseSpec("etcd://root:s3cret@a:1,b:2")
	if err != nil {
		t.Fatal(err)
	}
	js, _ = json.Marshal(c)
	log.Reset()
	slog.New(slog.NewJSONHandler(&log, nil)).Info("boot", "arbiter", c, "dsn", c.DSN)
	for _, out := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", c.DSN), string(js), log.String()} {
		if strings.Contains(out, "s3cret") || strings.Contains(out, "root:") {
			t.Errorf("output holds etcd credentials: %s", out)
		}
	}
	if user, pw, err := EtcdCredentials(string(c.DSN)); user != "root" || pw != "s3cret" || err != nil {
		t.Errorf("EtcdCredentials = %q, %q, %v", user, pw, err)
	}
	if user, pw, err := EtcdCredentials("etcd://ro%40t:p%40ss%2Fw@a:1"); user != "ro@t" || pw != "p@ss/w" || err != nil {
		t.Errorf("EtcdCredentials of an encoded value = %q, %q, %v", user, pw, err)
	}
	if user, pw, err := EtcdCredentials("etcd://a:1"); user != "" || pw != "" || err != nil {
		t.Errorf("EtcdCredentials without credentials = %q, %q, %v", user, pw, err)
	}
	e, _ := ParseSpec("etcd://a:1,b:2")
	if e.String() != "etcd://a:1,b:2" || (Spec{}).String() != "peer" {
		t.Errorf("String() = %q, %q", e.String(), Spec{}.String())
	}
}
