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

// minRecordSize is the encoded size of a record whose strings and response are
// empty: the least a record can occupy, used to bound record counts.
const minRecordSize = 9*4 + 5*8 + 9*1 // nine length prefixes, five u64/i64, nine u8

// EncodeRecord appends every field of r to e. Times are unix nanoseconds with
// 0 standing for the zero time (so the instant 1970-01-01T00:00:00Z itself
// cannot be told from "unset"), and must lie within the years 1678–2262.
func EncodeRecord(e *Encoder, r continuity.Record) {
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
	e.U8(uint8(r.Kind))
	encodeTime(e, r.SubmittedAt)
	encodeTime(e, r.CompletedAt)
	e.Blob(r.Response)
	e.Bool(r.Refused)
}

// DecodeRecord reads a record written by EncodeRecord. Unknown enum codes and
// kinds are rejected; the record's own invariants are not checked (callers
// run Record.Validate). Decoded times are in UTC. On failure it returns the
// zero Record and d holds the error.
func DecodeRecord(d *Decoder) continuity.Record {
	var r continuity.Record
	r.RequestKey = d.String()
	r.PayloadHash = d.String()
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
	r.Kind = decodeKind(d)
	r.SubmittedAt = decodeTime(d)
	r.CompletedAt = decodeTime(d)
	r.Response = d.BlobMax(MaxStoredResponse, "stored response")
	r.Refused = d.Bool()
	if d.err != nil {
		return continuity.Record{}
	}
	return r
}

func decodeKind(d *Decoder) continuity.Kind {
	off := d.off
	k := continuity.Kind(d.U8())
	if d.err == nil && k != continuity.KindWork && k != continuity.KindRoute {
		d.Fail(fmt.Errorf("%w: unknown record kind %d at offset %d", ErrInvalidValue, k, off))
		return 0
	}
	return k
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
