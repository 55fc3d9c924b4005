package exchange

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/wire"
)

// Requests that differ in any hashed part get different payload hashes,
// including splits that only a length prefix tells apart.
func TestPayloadHashDistinguishesRequests(t *testing.T) {
	type req struct {
		method, target string
		hdr            map[string]string
		pv             []string // name, value pairs
		body           string
	}
	cases := map[string]req{
		"base":        {method: "GET", target: "/a"},
		"method":      {method: "POST", target: "/a"},
		"path":        {method: "GET", target: "/b"},
		"query":       {method: "GET", target: "/a?x=1"},
		"query-order": {method: "GET", target: "/a?x=1&y=2"},
		"accept":      {method: "GET", target: "/a", hdr: map[string]string{"Accept": "text/plain"}},
		"ctype":       {method: "GET", target: "/a", hdr: map[string]string{"Content-Type": "text/plain"}},
		"pathvalue":   {method: "GET", target: "/a", pv: []string{"id", "7"}},
		"pv-split":    {method: "GET", target: "/a", pv: []string{"id7", ""}},
		"body":        {method: "GET", target: "/a", body: "x"},
		"body-big":    {method: "GET", target: "/a", body: strings.Repeat("x", 4096)},
	}
	seen := map[string]string{}
	for name, c := range cases {
		r := httptest.NewRequest(c.method, c.target, nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		var pv []wire.HeaderField
		for i := 0; i+1 < len(c.pv); i += 2 {
			pv = append(pv, wire.HeaderField{Name: c.pv[i], Value: c.pv[i+1]})
		}
		h := PayloadHash(r, pv, []byte(c.body))
		if len(h) != 64 {
			t.Fatalf("%s: hash %q is not 64 hex digits", name, h)
		}
		if other, dup := seen[h]; dup {
			t.Fatalf("%s and %s hash alike", name, other)
		}
		seen[h] = name
	}
	// The same request in another query order or header case hashes alike.
	a := PayloadHash(httptest.NewRequest("GET", "/a?y=2&x=1", nil), nil, nil)
	if b := PayloadHash(httptest.NewRequest("GET", "/a?x=1&y=2", nil), nil, nil); a != b {
		t.Fatalf("query order changed the hash")
	}
}

// The payload hash is shared between versions: a node must hash a request
// exactly as the nodes it replaces did, or an Idempotency-Key retried during
// a rolling upgrade is answered as a conflict. This is the value of encoding
// version 2 (payloadHashVersion); changing it needs a migration, not a new
// constant here.
func TestPayloadHashIsStable(t *testing.T) {
	body := `{"title":"x"}`
	r := httptest.NewRequest(http.MethodPost, "/todos/7?b=2&a=1", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	got := PayloadHash(r, []wire.HeaderField{{Name: "id", Value: "7"}}, []byte(body))
	if want := "7c362bf24a683c7e8ac1184ec5c81f799b62fe951635722d150ac55db4c482ee"; got != want {
		t.Fatalf("payload hash changed: %s, want %s", got, want)
	}
}

// The hash of a request without a body and of one whose body does not fit
// the stack buffer are pinned too, and AppendPayloadHash appends the same
// hex digits PayloadHash returns.
func TestPayloadHashPinnedAndAppended(t *testing.T) {
	get := httptest.NewRequest(http.MethodGet, "/bench", nil)
	big := []byte(strings.Repeat("0123456789", 100))
	put := httptest.NewRequest(http.MethodPut, "/blobs/9", bytes.NewReader(big))
	put.Header["Accept"] = []string{"text/plain", "application/json"}
	for _, c := range []struct {
		r    *http.Request
		pv   []wire.HeaderField
		body []byte
		want string
	}{
		{get, nil, nil, "09343343e742e9d1463712b33e01ff0db1d61ad85be48b5ac59fc28c915e7d34"},
		{put, []wire.HeaderField{{Name: "id", Value: "9"}, {Name: "a", Value: "b"}}, big, "5b141621d89c2139f195b75c15aaf7c83bfa96136bf8da1ebafd60c7bc1a548d"},
	} {
		if got := PayloadHash(c.r, c.pv, c.body); got != c.want {
			t.Fatalf("payload hash of %s %s changed: %s, want %s", c.r.Method, c.r.URL, got, c.want)
		}
	}
}

func TestAppendPayloadHashAppends(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/todos/7?b=2&a=1", strings.NewReader("{}"))
	want := PayloadHash(r, nil, []byte("{}"))
	if got := string(AppendPayloadHash([]byte("prefix"), r, nil, []byte("{}"))); got != "prefix"+want {
		t.Fatalf("AppendPayloadHash = %q, want %q", got, "prefix"+want)
	}
}
