package wire

import (
	"fmt"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// Enum codes on the wire. The index of a value in its table is its u8 code;
// code 0 is the unset (empty) value. Codes are part of the format: append new
// values, never reorder. A value missing from its table encodes as
// invalidCode, which every decoder rejects, so a corrupted record fails
// loudly at the receiver instead of changing meaning.
var (
	roleCodes   = []continuity.Role{"", continuity.RolePrimary, continuity.RoleStandby}
	phaseCodes  = []continuity.Phase{"", continuity.PhaseSubmitted, continuity.PhaseCompleted, continuity.PhaseRejected}
	resultCodes = []continuity.Result{"", continuity.ResultPending, continuity.ResultSucceeded, continuity.ResultRejected}
	healthCodes = []continuity.Health{"", continuity.HealthLocalOnly, continuity.HealthHealthy, continuity.HealthDegraded,
		continuity.HealthUnavailable}
	replicaStatusCodes = []continuity.ReplicaStatus{"", continuity.ReplicaUnassigned, continuity.ReplicaPreparing,
		continuity.ReplicaMirrored, continuity.ReplicaOwnerLost, continuity.ReplicaRejected,
		continuity.ReplicaDegradedContinuing}
)

const invalidCode = 0xFF

func encodeEnum[T ~string](e *Encoder, table []T, v T) {
	for code, known := range table {
		if known == v {
			e.U8(uint8(code))
			return
		}
	}
	e.U8(invalidCode)
}

func decodeEnum[T ~string](d *Decoder, table []T, what string) T {
	off := d.off
	code := d.U8()
	if d.err != nil {
		return ""
	}
	if int(code) >= len(table) {
		d.Fail(fmt.Errorf("%w: unknown %s code %d at offset %d", ErrInvalidValue, what, code, off))
		return ""
	}
	return table[code]
}

// MaxStoredResponse is the longest stored response (Record.Response) a record
// may carry. The runtime never stores a longer one, so DecodeRecord refuses
// one before allocating it: a peer cannot make a node reserve a frame's worth
// of memory per record.
const MaxStoredResponse = 64 << 10

// MaxWorkValue is the longest encoded input or output of typed work
// (Record.Input, Record.Output) a record may carry on the wire. The runtime's
// own bound (MESH_WORK_MAX_RESULT_BYTES) may not exceed it, so DecodeRecord
// refuses a longer one before allocating it.
const MaxWorkValue = 4 << 20

// kindWorkSection is set in a record's kind byte when the record ends with the
// typed work section: a version byte (workSectionVersion), then Input and
// Output, each a presence bool followed, when present, by a length-prefixed
// blob. A record without typed work values encodes exactly as before the
// section existed, so older encodings decode unchanged; a decoder that
// predates the section rejects the flagged kind byte as an unknown kind
// instead of misreading the fields.
const kindWorkSection = 0x80

// workSectionVersion is the layout of the typed work section. A decoder
// rejects a version it does not know.
const workSectionVersion = 1

// minRecordSize is the encoded size of a record whose strings and response are
// empty: the least a record can occupy, used to bound record counts.
const minRecordSize = 9*4 + 5*8 + 9*1 // nine length prefixes, five u64/i64, nine u8

// EncodeRecord appends every field of r to e. Times are unix nanoseconds with
// 0 standing for the zero time (so the instant 1970-01-01T00:00:00Z itself
// cannot be told from "unset"), and must lie within the years 1678–2262.
func EncodeRecord(e *Encoder, r continuity.Record) { appendRecord(e, &r) }

// appendRecord is EncodeRecord without copying the record.
func appendRecord(e *Encoder, r *continuity.Record) {
	e.String(r.RequestKey)
	e.String(r.PayloadHash)
	e.U64(r.Attempt)
	encodeEnum(e, phaseCodes, r.Phase)
	encodeEnum(e, resultCodes, r.Result)
	e.String(r.IngressNode)
	e.String(r.OwnerNode)
	e.String(r.ReplicaNode)
	e.U64(r.ReplicationCount)
	encodeEnum(e, replicaStatusCodes, r.ReplicaStatus)
	encodeEnum(e, roleCodes, r.Role)
	e.U64(r.Epoch)
	encodeEnum(e, healthCodes, r.Health)
	e.String(r.ExecutionNode)
	e.Bool(r.RoutedRemotely)
	e.Bool(r.FellBackLocally)
	e.String(r.Error)
	e.String(r.RuntimeName)
	work := r.Input != nil || r.Output != nil
	if work {
		e.U8(uint8(r.Kind) | kindWorkSection)
	} else {
		e.U8(uint8(r.Kind))
	}
	encodeTime(e, r.SubmittedAt)
	encodeTime(e, r.CompletedAt)
	e.Blob(r.Response)
	e.Bool(r.Refused)
	if work {
		e.U8(workSectionVersion)
		encodeOptionalBlob(e, r.Input)
		encodeOptionalBlob(e, r.Output)
	}
}

// encodeOptionalBlob writes a presence bool (nil and empty stay apart) and,
// when present, v.
func encodeOptionalBlob(e *Encoder, v []byte) {
	e.Bool(v != nil)
	if v != nil {
		e.Blob(v)
	}
}

// decodeOptionalBlob reads what encodeOptionalBlob wrote, refusing a value
// longer than MaxWorkValue.
func decodeOptionalBlob(d *Decoder, what string) []byte {
	if !d.Bool() {
		return nil
	}
	v := d.BlobMax(MaxWorkValue, what)
	if v == nil && d.err == nil {
		v = []byte{}
	}
	return v
}

// DecodeRecord reads a record written by EncodeRecord. Unknown enum codes and
// kinds are rejected; the record's own invariants are not checked (callers
// run Record.Validate). Decoded times are in UTC. On failure it returns the
// zero Record and d holds the error.
func DecodeRecord(d *Decoder) continuity.Record {
	var r continuity.Record
	r.RequestKey, r.PayloadHash = d.stringPair()
	r.Attempt = d.U64()
	r.Phase = decodeEnum(d, phaseCodes, "phase")
	r.Result = decodeEnum(d, resultCodes, "result")
	r.IngressNode = d.Name()
	r.OwnerNode = d.Name()
	r.ReplicaNode = d.Name()
	r.ReplicationCount = d.U64()
	r.ReplicaStatus = decodeEnum(d, replicaStatusCodes, "replica status")
	r.Role = decodeEnum(d, roleCodes, "role")
	r.Epoch = d.U64()
	r.Health = decodeEnum(d, healthCodes, "health")
	r.ExecutionNode = d.Name()
	r.RoutedRemotely = d.Bool()
	r.FellBackLocally = d.Bool()
	r.Error = d.String()
	r.RuntimeName = d.Name()
	var work bool
	r.Kind, work = decodeKind(d)
	r.SubmittedAt = decodeTime(d)
	r.CompletedAt = decodeTime(d)
	r.Response = d.BlobMax(MaxStoredResponse, "stored response")
	r.Refused = d.Bool()
	if work {
		off := d.off
		if v := d.U8(); d.err == nil && v != workSectionVersion {
			d.Fail(fmt.Errorf("%w: unknown work section version %d at offset %d", ErrInvalidValue, v, off))
		}
		r.Input = decodeOptionalBlob(d, "work input")
		r.Output = decodeOptionalBlob(d, "work output")
		if d.err == nil && r.Input == nil && r.Output == nil {
			// The encoder writes the section only for a value: a section
			// without one would not re-encode to the same bytes.
			d.Fail(fmt.Errorf("%w: empty work section at offset %d", ErrInvalidValue, off))
		}
	}
	if d.err != nil {
		return continuity.Record{}
	}
	return r
}

// decodeKind reads the kind byte and reports whether it announces the typed
// work section.
func decodeKind(d *Decoder) (continuity.Kind, bool) {
	off := d.off
	b := d.U8()
	work := b&kindWorkSection != 0
	k := continuity.Kind(b &^ kindWorkSection)
	if d.err == nil && k != continuity.KindWork && k != continuity.KindRoute {
		d.Fail(fmt.Errorf("%w: unknown record kind %d at offset %d", ErrInvalidValue, k, off))
		return 0, false
	}
	return k, work
}

func encodeTime(e *Encoder, t time.Time) {
	if t.IsZero() {
		e.I64(0)
		return
	}
	e.I64(t.UnixNano())
}

func decodeTime(d *Decoder) time.Time {
	n := d.I64()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
