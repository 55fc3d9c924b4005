package operator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"meshgo.dev/mesh/internal/continuity"
)

func lookupDoc(out []byte) []byte {
	rec := continuity.Record{
		RequestKey: "k", PayloadHash: "h", Attempt: 1, Phase: continuity.PhaseCompleted, Result: continuity.ResultSucceeded,
		OwnerNode: primaryNode, ExecutionNode: primaryNode, ReplicationCount: 1, ReplicaStatus: continuity.ReplicaUnassigned,
		Role: continuity.RolePrimary, Health: continuity.HealthLocalOnly, Output: out,
	}
	b, err := json.Marshal(newContinuityRecord(rec))
	if err != nil {
		panic(err)
	}
	return b
}

// storedOutput recovers the stored bytes from a decoded lookup: base64
// decoded, or the inline JSON.
func storedOutput(t *testing.T, c ContinuityRecord) []byte {
	t.Helper()
	if c.ResultEncoding == nil {
		return nil
	}
	if *c.ResultEncoding == ResultEncodingBase64 {
		var s string
		if err := json.Unmarshal(c.ResultValue, &s); err != nil {
			t.Fatal(err)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return c.ResultValue
}

func TestResultValueEncodings(t *testing.T) {
	for _, tt := range []struct {
		name, enc string
		out       []byte
	}{
		{"object", ResultEncodingJSON, []byte(`{"id":42}`)},
		{"string", ResultEncodingJSON, []byte(`"done"`)},
		{"json null", ResultEncodingJSON, []byte(`null`)},
		{"number with spaces", ResultEncodingJSON, []byte(` 7 `)},
		{"empty", ResultEncodingBase64, []byte{}},
		{"binary", ResultEncodingBase64, []byte{0, 0xff, 0xfe}},
		{"text not json", ResultEncodingBase64, []byte("plain text")},
		{"invalid utf-8 in a string", ResultEncodingBase64, []byte("\"\xff\"")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := DecodeContinuityRecord(lookupDoc(tt.out))
			if err != nil {
				t.Fatal(err)
			}
			if c.ResultEncoding == nil || *c.ResultEncoding != tt.enc {
				t.Fatalf("encoding %v, want %s", c.ResultEncoding, tt.enc)
			}
			got := storedOutput(t, c)
			if tt.enc == ResultEncodingJSON && !sameJSON(got, tt.out) || tt.enc == ResultEncodingBase64 && !bytes.Equal(got, tt.out) {
				t.Fatalf("value %q, want %q", got, tt.out)
			}
		})
	}
	// No output: both keys null.
	c, err := DecodeContinuityRecord(lookupDoc(nil))
	if err != nil || c.ResultEncoding != nil || !bytes.Equal(c.ResultValue, []byte("null")) {
		t.Fatalf("no output: %v %q %v", c.ResultEncoding, c.ResultValue, err)
	}
}

func TestResultValueInconsistentRejected(t *testing.T) {
	base := string(lookupDoc(nil))
	for _, tt := range []struct{ name, enc, value, want string }{
		{"value without encoding", `null`, `{"a":1}`, "result_value without result_encoding"},
		{"unknown encoding", `"hex"`, `"00"`, `invalid result_encoding "hex"`},
		{"base64 not a string", `"base64"`, `42`, "not a string"},
		{"base64 invalid", `"base64"`, `"!!"`, "illegal base64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			doc := strings.Replace(base, `"result_encoding":null,"result_value":null`,
				`"result_encoding":`+tt.enc+`,"result_value":`+tt.value, 1)
			if doc == base {
				t.Fatal("fixture did not change")
			}
			if _, err := DecodeContinuityRecord([]byte(doc)); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
		})
	}
	// A node from before typed work sends neither key.
	old := strings.Replace(base, `"result_encoding":null,"result_value":null,`, "", 1)
	if _, err := DecodeContinuityRecord([]byte(old)); err != nil {
		t.Fatalf("document without result keys: %v", err)
	}
}

// FuzzResultValue: any stored output renders to a lookup document that
// decodes, validates and gives the output back (byte for byte when base64,
// as equivalent JSON when inline).
func FuzzResultValue(f *testing.F) {
	f.Add([]byte(`{"id":42}`))
	f.Add([]byte{})
	f.Add([]byte{0, 0xff})
	f.Add([]byte(`"\ud800"`))
	f.Add([]byte(` [1, 2] `))
	f.Fuzz(func(t *testing.T, out []byte) {
		c, err := DecodeContinuityRecord(lookupDoc(out))
		if err != nil {
			t.Fatalf("rendered document does not decode: %v", err)
		}
		got := storedOutput(t, c)
		if *c.ResultEncoding == ResultEncodingBase64 {
			if !bytes.Equal(got, out) {
				t.Fatalf("base64 value %q, want %q", got, out)
			}
			return
		}
		if !sameJSON(got, out) {
			t.Fatalf("inline value %q, want %q", got, out)
		}
		var txt bytes.Buffer
		if err := c.WriteText(&txt); err != nil || !strings.Contains(txt.String(), "result_encoding:") {
			t.Fatalf("text: %v", err)
		}
	})
}

// sameJSON reports whether a and b are the same JSON value (numbers compared
// as written, escapes resolved).
func sameJSON(a, b []byte) bool {
	decode := func(b []byte) (any, error) {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		err := d.Decode(&v)
		return v, err
	}
	va, errA := decode(a)
	vb, errB := decode(b)
	return errA == nil && errB == nil && reflect.DeepEqual(va, vb)
}
