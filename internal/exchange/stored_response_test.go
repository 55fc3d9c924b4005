package exchange

import (
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

func TestStoredResponseRoundTrip(t *testing.T) {
	for name, resp := range map[string]Response{
		"typical": {Status: 201, Header: map[string][]string{"Content-Type": {"application/json"}, "X-Multi": {"a", "b"}},
			Body: []byte(`{"id":7}` + "\n")},
		"empty":  {Status: 204, Header: map[string][]string{}},
		"binary": {Status: 200, Header: map[string][]string{"X": {""}}, Body: []byte{0, 1, 2, 255}},
	} {
		t.Run(name, func(t *testing.T) {
			withKey := Response{Status: resp.Status, Header: map[string][]string{HeaderRequestKey: {"k"}}, Body: resp.Body}
			for k, v := range resp.Header {
				withKey.Header[k] = v
			}
			b := AppendStored(nil, withKey, nil)
			got, err := DecodeStored(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != resp.Status || !bytes.Equal(got.Body, resp.Body) || len(got.Header) != len(resp.Header) {
				t.Fatalf("got %+v, want %+v", got, resp)
			}
			for k, v := range resp.Header {
				if !reflect.DeepEqual(got.Header[k], v) {
					t.Fatalf("header %s: %q, want %q", k, got.Header[k], v)
				}
			}
			if !bytes.Equal(AppendStored(nil, got, nil), b) {
				t.Fatal("encoding is not canonical")
			}
		})
	}
	for _, bad := range [][]byte{nil, {}, {2}, {1}, {1, 0x7f}, {1, 200, 1}, {1, 200, 1, 0, 0, 0}, {1, 200, 1, 1}, {1, 200, 1, 0, 0, 5, 'a'}} {
		if _, err := DecodeStored(bad); err == nil {
			t.Errorf("DecodeStored(%v) accepted malformed input", bad)
		}
	}
}

func FuzzStoredResponse(f *testing.F) {
	f.Add(AppendStored(nil, Response{Status: 200, Header: map[string][]string{"A": {"1", "2"}}, Body: []byte("x")}, nil))
	f.Add(AppendStored(nil, Response{Status: http.StatusNoContent}, nil))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := DecodeStored(b)
		if err != nil {
			return
		}
		again, err := DecodeStored(AppendStored(nil, resp, nil))
		if err != nil || again.Status != resp.Status || !bytes.Equal(again.Body, resp.Body) || len(again.Header) != len(resp.Header) {
			t.Fatalf("re-encoding %+v gave %+v, %v", resp, again, err)
		}
	})
}
