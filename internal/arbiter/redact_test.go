package arbiter

import (
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	for _, tt := range []struct{ dsn, want string }{
		{"postgres://mesh:s3cret@db.internal:5432/mesh?sslmode=require", "postgres://db.internal:5432"},
		{"postgresql://db1,db2:5433/x", "postgresql://db1,db2:5433"},
		{"etcd://10.0.0.1:2379,10.0.0.2:2379", "etcd://10.0.0.1:2379,10.0.0.2:2379"},
		{"etcd://root:s3cret@10.0.0.1:2379,10.0.0.2:2379", "etcd://10.0.0.1:2379,10.0.0.2:2379"},
		{"etcd://root:s3c/r#et?x@[::1]:2379/", "etcd://[::1]:2379"},
		{"etcd://root:p%40ss%2Fword@a:2379", "etcd://a:2379"},
		{"host=db password=s3cret", "[redacted]"},
		{"postgres://u:p@[::1/x", "[redacted]"},
		{"", "[redacted]"},
	} {
		if got := Redacted(tt.dsn); got != tt.want {
			t.Errorf("Redacted(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestScrub(t *testing.T) {
	dsn := "postgres://mesh:p%40ss%2Fword@db:5432/mesh"
	for _, msg := range []string{
		"dial " + dsn + ": refused",
		"auth failed for mesh:p@ss/word@db",
		"auth failed for mesh:p%40ss%2Fword@db",
		"cannot parse p@ss/word",
	} {
		got := Scrub(msg, dsn)
		for _, secret := range []string{"p@ss/word", "p%40ss%2Fword", dsn} {
			if strings.Contains(got, secret) {
				t.Errorf("Scrub(%q) = %q still holds %q", msg, got, secret)
			}
		}
	}
	if got := Scrub("dial "+dsn+": refused", dsn); got != "dial postgres://db:5432: refused" {
		t.Errorf("Scrub of the whole string: %q", got)
	}
	etcd := "etcd://root:p%40ss%2Fword@a:2379,b:2379"
	for _, msg := range []string{"dial " + etcd + ": refused", "auth failed for root:p%40ss%2Fword@a"} {
		got := Scrub(msg, etcd)
		for _, secret := range []string{"p@ss/word", "p%40ss%2Fword", "root:", etcd} {
			if strings.Contains(got, secret) {
				t.Errorf("Scrub(%q) = %q still holds %q", msg, got, secret)
			}
		}
	}
	if got := Scrub("plain", ""); got != "plain" {
		t.Errorf("Scrub with no dsn changed the message: %q", got)
	}
}
