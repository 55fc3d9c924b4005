package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"meshgo.dev/mesh/internal/continuity"
)

func TestMessageRoundTrip(t *testing.T) {
	for _, s := range sampleMessages() {
		t.Run(s.name, func(t *testing.T) {
			enc := Encode(s.in)
			got, err := Decode(enc)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := s.expected(); !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip mismatch\n got: %#v\nwant: %#v", got, want)
			}
			if again := Encode(got); !bytes.Equal(again, enc) {
				t.Fatalf("re-encoding differs: %d bytes vs %d", len(again), len(enc))
			}
			prefix := []byte("prefix")
			if app := AppendEncode(prefix, s.in); !bytes.Equal(app[:len(prefix)], prefix) || !bytes.Equal(app[len(prefix):], enc) {
				t.Fatal("AppendEncode does not append the Encode bytes")
			}
		})
	}
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	enc := Encode(realisticRouteRequest())
	m, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 0xAA
	}
	if !reflect.DeepEqual(m, realisticRouteRequest()) {
		t.Fatal("decoded message changed when the input buffer was overwritten")
	}
}

// Every strict prefix of a valid encoding must fail cleanly: the format is
// prefix-free, so a prefix can never be a complete message.
func TestDecodeTruncatedAtEveryOffset(t *testing.T) {
	for _, s := range sampleMessages() {
		t.Run(s.name, func(t *testing.T) {
			enc := Encode(s.in)
			for i := range enc {
				m, err := Decode(enc[:i])
				if err == nil {
					t.Fatalf("Decode of %d/%d bytes succeeded: %#v", i, len(enc), m)
				}
				if !errors.Is(err, ErrTruncated) {
					t.Fatalf("Decode of %d/%d bytes: %v, want ErrTruncated", i, len(enc), err)
				}
			}
		})
	}
}

func TestDecodeTrailingBytes(t *testing.T) {
	for _, s := range sampleMessages() {
		enc := append(Encode(s.in), 0)
		if _, err := Decode(enc); !errors.Is(err, ErrTrailingBytes) {
			t.Errorf("%s: Decode with a trailing byte: %v, want ErrTrailingBytes", s.name, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	pingWithRole := func(code byte) []byte {
		b := Encode(Ping{Nonce: 1, Authority: Authority{Role: continuity.RolePrimary, Epoch: 1}})
		b[9] = code // tag, 8 nonce bytes, then the role code
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want error
		text string
	}{
		{"empty", nil, ErrTruncated, "empty message"},
		{"tag zero", []byte{0}, ErrUnknownMessage, "0x00"},
		{"unknown tag", []byte{0xFE, 1, 2}, ErrUnknownMessage, "0xfe"},
		{"unknown role", pingWithRole(3), ErrInvalidValue, "unknown role code 3"},
		{"invalid role marker", pingWithRole(invalidCode), ErrInvalidValue, "unknown role code 255"},
		{"bool 2", cat([]byte{tagDispatchAck}, make([]byte, 8), []byte{2}, u32(0)), ErrInvalidValue, "bool byte 2"},
		{"peer count 4G", cat([]byte{tagPeerList}, u32(0xFFFFFFFF)), ErrTruncated, "length 4294967295"},
		{"peer count exceeds bytes", cat([]byte{tagPeerList}, u32(3), u32(0), u32(0)), ErrTruncated, "length 3"},
		{"string length 4G", cat([]byte{tagPeerList}, u32(1), u32(0xFFFFFFFF), []byte("abc")), ErrTruncated, "length 4294967295"},
		{"body length 4G", cat([]byte{tagOperatorReply}, []byte{1}, u32(0), u32(0xFFFFFFFF)), ErrTruncated, "length 4294967295"},
		{"record count 4G", cat([]byte{tagSync}, make([]byte, 9+8), u32(0xFFFFFFFF)), ErrTruncated, "length 4294967295"},
		{"record count beyond min size", cat([]byte{tagSync}, make([]byte, 9+8), u32(2), make([]byte, 2*minRecordSize-1)),
			ErrTruncated, "length 2"},
		{"header count 4G", cat([]byte{tagRouteResponse}, make([]byte, 8), []byte{1}, u32(0), u32(200), u32(0xFFFFFFFF)),
			ErrTruncated, "length 4294967295"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %#v, %v; want %v", m, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("error %q does not mention %q", err, tt.text)
			}
		})
	}
}

// A hostile count must be refused before anything proportional to it is
// allocated.
func TestDecodeHugeCountsDoNotAllocate(t *testing.T) {
	in := append([]byte{tagSync}, make([]byte, 9+8)...)
	in = binary.LittleEndian.AppendUint32(in, 0xFFFFFFFF)
	run := func() {
		if _, err := Decode(in); err == nil {
			t.Fatal("Decode succeeded")
		}
	}
	if perCall := allocatedBytes(50, run); perCall > 2048 {
		t.Fatalf("rejecting a 4G record count allocated %d bytes per call", perCall)
	}
}

func TestAppendEncodeReusesBuffer(t *testing.T) {
	req := realisticRouteRequest()
	var m Message = req
	buf := AppendEncode(nil, m)
	allocs := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], m) })
	if allocs != 0 {
		t.Fatalf("AppendEncode into a large enough buffer allocated %v times", allocs)
	}
}

func BenchmarkEncodeDecodeRouteRequest(b *testing.B) {
	var m Message = realisticRouteRequest()
	buf := AppendEncode(nil, m)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendEncode(buf[:0], m)
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// MessageDecoder.DecodeUpsert agrees with Decode on every sample: an Upsert
// decodes alike into the caller's value, anything else is left to Decode,
// and a truncated Upsert is an error.
func TestDecodeUpsertMatchesDecode(t *testing.T) {
	var md MessageDecoder
	for _, s := range sampleMessages() {
		enc := Encode(s.in)
		var up Upsert
		ok, err := md.DecodeUpsert(enc, &up)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.expected()
		if _, isUpsert := want.(Upsert); ok != isUpsert {
			t.Fatalf("%s: DecodeUpsert took it: %v", s.name, ok)
		}
		if ok && !reflect.DeepEqual(up, want) {
			t.Fatalf("%s: mismatch\n got: %#v\nwant: %#v", s.name, up, want)
		}
		if ok {
			for cut := 1; cut < len(enc); cut++ {
				if ok, err := md.DecodeUpsert(enc[:cut], &up); !ok || err == nil {
					t.Fatalf("%s cut at %d: ok %v err %v", s.name, cut, ok, err)
				}
			}
		}
	}
	if ok, err := md.DecodeUpsert(nil, new(Upsert)); ok || err != nil {
		t.Fatalf("empty frame: ok %v err %v", ok, err)
	}
}

// MessageDecoder.DecodePrepare agrees with Decode likewise, reusing the
// caller's value from one Prepare to the next.
func TestDecodePrepareMatchesDecode(t *testing.T) {
	var md MessageDecoder
	var p Prepare // reused across samples, as the link's reader does
	seen := 0
	for _, s := range sampleMessages() {
		enc := Encode(s.in)
		ok, err := md.DecodePrepare(enc, &p)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		want := s.expected()
		if _, isPrepare := want.(Prepare); ok != isPrepare {
			t.Fatalf("%s: DecodePrepare took it: %v", s.name, ok)
		}
		if !ok {
			continue
		}
		seen++
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("%s: mismatch\n got: %#v\nwant: %#v", s.name, p, want)
		}
		for cut := 1; cut < len(enc); cut++ {
			if ok, err := md.DecodePrepare(enc[:cut], &p); !ok || err == nil {
				t.Fatalf("%s cut at %d: ok %v err %v", s.name, cut, ok, err)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no Prepare among the samples")
	}
	if ok, err := md.DecodePrepare(nil, new(Prepare)); ok || err != nil {
		t.Fatalf("empty frame: ok %v err %v", ok, err)
	}
}

// MessageDecoder.DecodeHeld agrees with Decode, and a key equal to the
// known one is that very string, not a copy.
func TestDecodeHeldMatchesDecode(t *testing.T) {
	var md MessageDecoder
	var h Held
	known := "http-route::cluster.Thing::0123"
	for _, in := range []Held{{ID: 1, RequestKey: known, Attempt: 3}, {ID: 2, RequestKey: "other", Attempt: 1}, {ID: 3}} {
		enc := Encode(in)
		ok, err := md.DecodeHeld(enc, &h, known)
		if !ok || err != nil || h != in {
			t.Fatalf("DecodeHeld(%+v) = %+v, %v, %v", in, h, ok, err)
		}
		if in.RequestKey == known && unsafe.StringData(h.RequestKey) != unsafe.StringData(known) {
			t.Fatal("a known key was copied")
		}
		for cut := 1; cut < len(enc); cut++ {
			if ok, err := md.DecodeHeld(enc[:cut], &h, known); !ok || err == nil {
				t.Fatalf("cut at %d: ok %v err %v", cut, ok, err)
			}
		}
	}
	for _, s := range sampleMessages() {
		enc := Encode(s.in)
		ok, err := md.DecodeHeld(enc, &h, known)
		_, isHeld := s.expected().(Held)
		if err != nil || ok != isHeld || (ok && !reflect.DeepEqual(h, s.expected())) {
			t.Fatalf("%s: DecodeHeld ok %v err %v got %+v", s.name, ok, err, h)
		}
	}
}

// MessageDecoder.DecodeAck agrees with Decode for both answers it takes,
// reusing the caller's value, refuses truncated ones and leaves every
// other message to Decode; an OK answer allocates nothing.
func TestDecodeAckMatchesDecode(t *testing.T) {
	var md MessageDecoder
	var a PrepareAck
	auth := Authority{Role: "primary", Epoch: 7}
	for _, in := range []Message{
		PrepareAck{ID: 1, OK: true, Authority: auth},
		PrepareAck{ID: 2, Reason: "stale_epoch", Authority: auth},
		HeldAck{ID: 3, OK: true, Authority: auth},
		HeldAck{ID: 4, Reason: "attempt_mismatch", Authority: auth},
		Held{ID: 5, RequestKey: "k", Attempt: 1},
	} {
		enc := Encode(in)
		want, err := Decode(enc)
		if err != nil {
			t.Fatal(err)
		}
		isPrep, isHeld, err := md.DecodeAck(enc, &a)
		if err != nil {
			t.Fatalf("%#v: %v", in, err)
		}
		_, wantPrep := in.(PrepareAck)
		_, wantHeld := in.(HeldAck)
		if isPrep != wantPrep || isHeld != wantHeld {
			t.Fatalf("%#v: DecodeAck took it as prepare ack %v, held ack %v", in, isPrep, isHeld)
		}
		switch {
		case isPrep && !reflect.DeepEqual(want, a), isHeld && !reflect.DeepEqual(want, HeldAck(a)):
			t.Fatalf("DecodeAck %#v, Decode %#v", a, want)
		case !isPrep && !isHeld:
			continue
		}
		for cut := 1; cut < len(enc); cut++ {
			if _, _, err := md.DecodeAck(enc[:cut], &a); err == nil {
				t.Fatalf("%#v cut at %d: no error", in, cut)
			}
		}
	}
	enc := Encode(HeldAck{ID: 9, OK: true, Authority: auth})
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = md.DecodeAck(enc, &a) }); allocs != 0 {
		t.Fatalf("DecodeAck of an OK answer: %v allocs", allocs)
	}
}

// BenchmarkDecodeUpsert decodes the completed route record a replica reads
// for every count-2 request, through one stream's decoder as a session does.
func BenchmarkDecodeUpsert(b *testing.B) {
	rec := fullRecord()
	rec.Refused, rec.Input, rec.Output, rec.Error = false, nil, nil, ""
	rec.PayloadHash = "sha256:" + strings.Repeat("9f86d081", 8)
	buf := AppendEncode(nil, Upsert{Record: rec})
	var md MessageDecoder
	var up Upsert
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := md.DecodeUpsert(buf, &up); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}
