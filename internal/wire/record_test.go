package wire

import (
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"meshgo.dev/mesh/internal/continuity"
)

func encodeRecord(r continuity.Record) []byte {
	var e Encoder
	EncodeRecord(&e, r)
	return e.Bytes()
}

func decodeRecord(b []byte) (continuity.Record, error) {
	d := NewDecoder(b)
	r := DecodeRecord(d)
	return r, d.Finish()
}

// If continuity.Record gains a field, fullRecord must set it, which makes the
// round trip below fail until the codec carries it too.
func TestRecordSampleCoversEveryField(t *testing.T) {
	v := reflect.ValueOf(fullRecord())
	for i := range v.NumField() {
		if !v.Type().Field(i).IsExported() {
			continue // registry bookkeeping, never on the wire
		}
		if v.Field(i).IsZero() {
			t.Errorf("fullRecord leaves %s zero; set it so the codec test covers it", v.Type().Field(i).Name)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for name, r := range map[string]continuity.Record{
		"full": fullRecord(), "pending": pendingRecord(), "extreme": extremeRecord(), "zero": {},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := decodeRecord(encodeRecord(r))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, r) {
				t.Fatalf("round trip mismatch\n got: %#v\nwant: %#v", got, r)
			}
		})
	}
}

func TestRecordMinSize(t *testing.T) {
	if n := len(encodeRecord(continuity.Record{})); n != minRecordSize {
		t.Fatalf("zero record encodes in %d bytes, minRecordSize is %d", n, minRecordSize)
	}
}

func TestRecordEveryEnumValue(t *testing.T) {
	for _, role := range roleCodes {
		for _, phase := range phaseCodes {
			for _, result := range resultCodes {
				for _, health := range healthCodes {
					for _, rs := range replicaStatusCodes {
						for _, kind := range []continuity.Kind{continuity.KindWork, continuity.KindRoute} {
							r := continuity.Record{Role: role, Phase: phase, Result: result, Health: health, ReplicaStatus: rs, Kind: kind}
							got, err := decodeRecord(encodeRecord(r))
							if err != nil || !reflect.DeepEqual(got, r) {
								t.Fatalf("%+v: got %+v, %v", r, got, err)
							}
						}
					}
				}
			}
		}
	}
}

func TestRecordLocalTimeComesBackUTC(t *testing.T) {
	r := pendingRecord()
	r.SubmittedAt = time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("CET", 3600))
	got, err := decodeRecord(encodeRecord(r))
	if err != nil {
		t.Fatal(err)
	}
	if !got.SubmittedAt.Equal(r.SubmittedAt) || got.SubmittedAt.Location() != time.UTC {
		t.Fatalf("SubmittedAt = %v, want %v in UTC", got.SubmittedAt, r.SubmittedAt)
	}
}

// Values outside the known sets must not turn into a different valid value.
func TestRecordUnknownValuesRejected(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*continuity.Record)
		text   string
	}{
		{"phase", func(r *continuity.Record) { r.Phase = "running" }, "unknown phase code 255"},
		{"result", func(r *continuity.Record) { r.Result = "maybe" }, "unknown result code 255"},
		{"replica status", func(r *continuity.Record) { r.ReplicaStatus = "lost" }, "unknown replica status code 255"},
		{"role", func(r *continuity.Record) { r.Role = "leader" }, "unknown role code 255"},
		{"health", func(r *continuity.Record) { r.Health = "ok" }, "unknown health code 255"},
		{"kind", func(r *continuity.Record) { r.Kind = 2 }, "unknown record kind 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fullRecord()
			tt.mutate(&r)
			got, err := decodeRecord(encodeRecord(r))
			if !errors.Is(err, ErrInvalidValue) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("decode = %v; want ErrInvalidValue mentioning %q", err, tt.text)
			}
			if !reflect.DeepEqual(got, continuity.Record{}) {
				t.Fatalf("failed decode returned a non-zero record %+v", got)
			}
		})
	}
}

func TestRecordTruncated(t *testing.T) {
	enc := encodeRecord(fullRecord())
	for i := range enc {
		if _, err := decodeRecord(enc[:i]); !errors.Is(err, ErrTruncated) {
			t.Fatalf("decode of %d/%d bytes: %v, want ErrTruncated", i, len(enc), err)
		}
	}
}

func TestMessageDecoderSharesNames(t *testing.T) {
	var md MessageDecoder
	msg := AppendEncode(nil, Upsert{Record: fullRecord()})
	a, err := md.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := md.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := a.(Upsert).Record, b.(Upsert).Record
	if !reflect.DeepEqual(ra, rb) || !reflect.DeepEqual(ra, fullRecord()) {
		t.Fatalf("interned decode changed the record:\n%+v\n%+v", ra, rb)
	}
	if unsafe.StringData(ra.OwnerNode) != unsafe.StringData(rb.OwnerNode) ||
		unsafe.StringData(ra.RuntimeName) != unsafe.StringData(rb.RuntimeName) {
		t.Fatal("names decoded twice through one Interner are separate copies")
	}
	if unsafe.StringData(ra.RequestKey) == unsafe.StringData(rb.RequestKey) {
		t.Fatal("request keys are interned; they never repeat")
	}
}

func TestInternerIsBounded(t *testing.T) {
	var in Interner
	for i := range 3 * maxInterned {
		in.intern([]byte(strings.Repeat("n", i%300+1) + string(rune('a'+i%26))))
	}
	if len(in.m) > maxInterned {
		t.Fatalf("interner holds %d names, bound %d", len(in.m), maxInterned)
	}
	long := []byte(strings.Repeat("x", maxInternedLen+1))
	var fresh Interner
	if fresh.intern(long); len(fresh.m) != 0 {
		t.Fatal("a name longer than the bound was kept")
	}
}

// TestRecordStoredResponseLimit: a record whose stored response is longer
// than MaxStoredResponse is refused before the response is copied; one at
// the limit still decodes.
func TestRecordStoredResponseLimit(t *testing.T) {
	r := fullRecord()
	r.Response = make([]byte, MaxStoredResponse)
	if got, err := decodeRecord(encodeRecord(r)); err != nil || len(got.Response) != MaxStoredResponse {
		t.Fatalf("response at the limit: %d bytes, %v", len(got.Response), err)
	}
	r.Response = make([]byte, 4<<20)
	b := encodeRecord(r)
	var err error
	if a := allocs(func() { _, err = decodeRecord(b) }); a > 64<<10 {
		t.Errorf("refusing a 4 MiB stored response allocated %d bytes", a)
	}
	if !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), "stored response of 4194304 bytes") {
		t.Fatalf("4 MiB stored response: %v, want ErrTooLong naming the size", err)
	}
}

// allocs returns the bytes f allocates.
func allocs(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestInternerRecentNamesAreTheKeptCopies(t *testing.T) {
	var in Interner
	names := []string{"primary@127.0.0.1:4370", "standby@[::1]:4371", "orders.Create", "billing.Charge",
		"audit.Write", "primary@127.0.0.1:4370"}
	first := map[string]string{}
	for round := range 3 {
		for _, n := range names {
			got := in.intern([]byte(n))
			if got != n {
				t.Fatalf("round %d: intern(%q) = %q", round, n, got)
			}
			if k, ok := first[n]; !ok {
				first[n] = got
			} else if unsafe.StringData(k) != unsafe.StringData(got) {
				t.Fatalf("round %d: %q came back as a second copy", round, n)
			}
		}
	}
	if got := in.intern(nil); got != "" {
		t.Fatalf("intern(nil) = %q", got)
	}
	// A name past the length bound is never kept, so it is never among the
	// recent names either: each read is its own copy.
	long := strings.Repeat("y", maxInternedLen+1)
	a, b := in.intern([]byte(long)), in.intern([]byte(long))
	if a != long || b != long || unsafe.StringData(a) == unsafe.StringData(b) {
		t.Fatal("a name longer than the bound was shared")
	}
	for _, s := range in.recent {
		if s == long {
			t.Fatal("a name longer than the bound is among the recent names")
		}
	}
}

func TestDecodeRecordKeyAndHashShareOneAllocation(t *testing.T) {
	for _, c := range []struct{ key, hash string }{
		{continuity.RouteKeyPrefix + "orders/42", "sha256:9f86d081884c7d659a2feaa0c55ad015"},
		{"k", ""},
		{"", "h"},
		{"", ""},
	} {
		rec := fullRecord()
		rec.RequestKey, rec.PayloadHash = c.key, c.hash
		got, err := decodeRecord(encodeRecord(rec))
		if err != nil {
			t.Fatal(err)
		}
		if got.RequestKey != c.key || got.PayloadHash != c.hash {
			t.Fatalf("decoded key %q hash %q, want %q %q", got.RequestKey, got.PayloadHash, c.key, c.hash)
		}
		if c.key != "" && c.hash != "" &&
			unsafe.Add(unsafe.Pointer(unsafe.StringData(got.RequestKey)), len(c.key)) != unsafe.Pointer(unsafe.StringData(got.PayloadHash)) {
			t.Fatal("the request key and the payload hash are separate allocations")
		}
	}
}
