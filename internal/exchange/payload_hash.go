package exchange

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"meshgo.dev/mesh/internal/wire"
)

// hashedHeaders are the request headers that take part in the payload hash,
// in the order they are encoded.
var hashedHeaders = []string{"Content-Type", "Content-Encoding", "Accept"}

// PayloadHash is the SHA-256 of a canonical encoding of what identifies a
// request: method, path, path values (by name), query (sorted), selected
// headers (by their place in hashedHeaders) and body, each prefixed with its
// uvarint length so no two requests encode alike. A typical request encodes
// into one or two SHA-256 blocks.
func PayloadHash(r *http.Request, pathValues []wire.HeaderField, body []byte) string {
	var out [2 * sha256.Size]byte
	return string(AppendPayloadHash(out[:0], r, pathValues, body))
}

// AppendPayloadHash appends PayloadHash(r, pathValues, body) to dst, for a
// caller that keeps the hash in one allocation with other text.
func AppendPayloadHash(dst []byte, r *http.Request, pathValues []wire.HeaderField, body []byte) []byte {
	var stack [512]byte
	buf := append(stack[:0], payloadHashVersion)
	field := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	field(r.Method)
	field(r.URL.Path)
	buf = binary.AppendUvarint(buf, uint64(len(pathValues)))
	if len(pathValues) > 1 {
		pathValues = append([]wire.HeaderField(nil), pathValues...)
		sort.Slice(pathValues, func(i, j int) bool { return pathValues[i].Name < pathValues[j].Name })
	}
	for _, pv := range pathValues {
		field(pv.Name)
		field(pv.Value)
	}
	if r.URL.RawQuery == "" {
		field("")
	} else {
		q, _ := url.ParseQuery(r.URL.RawQuery)
		field(q.Encode()) // Encode sorts by key
	}
	for _, h := range hashedHeaders {
		switch vs := r.Header[h]; len(vs) {
		case 0:
			field("")
		case 1:
			field(vs[0])
		default:
			field(strings.Join(vs, ","))
		}
	}
	var sum [sha256.Size]byte
	buf = binary.AppendUvarint(buf, uint64(len(body)))
	if len(buf)+len(body) <= cap(buf) {
		sum = sha256.Sum256(append(buf, body...))
	} else {
		d := sha256.New()
		d.Write(buf)
		d.Write(body)
		d.Sum(sum[:0])
	}
	return hex.AppendEncode(dst, sum[:])
}

// payloadHashVersion leads the canonical encoding PayloadHash digests, so a
// change of the encoding can never make two different requests hash alike.
// Nodes of different versions compare each other's hashes (a mirrored record
// against a retried request), so the encoding must not change without a
// migration; TestPayloadHashIsStable pins it.
const payloadHashVersion = 2
