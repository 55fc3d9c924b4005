package continuity

// AppendEncoded appends rec's encoding to b and returns the extended slice:
// the compact binary form the retained records are kept in (every field of
// Record, pending or terminal). A durable Store uses it for what it writes;
// the encoding carries no version of its own, so a store that keeps it
// across restarts prefixes one.
func AppendEncoded(b []byte, rec *Record) []byte { return appendRetained(b, rec) }

// DecodeEncoded decodes an encoding made by AppendEncoded. The record's
// Response does not share b's bytes.
func DecodeEncoded(b []byte) (Record, error) {
	var rec Record
	err := decodeRetainedInto(b, &rec)
	return rec, err
}
