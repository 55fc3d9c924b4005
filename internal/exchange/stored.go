package exchange

import (
	"encoding/binary"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strings"
)

// storedResponseVersion leads the encoding of a stored response.
const storedResponseVersion = 1

// AppendStored appends the replay encoding of resp to dst: a version
// byte, the status, the header fields (sorted by name, so equal responses
// encode alike) and the body, each length-prefixed with uvarints. Header
// fields opts does not let replay (credentials, hop-by-hop) are left out; nil
// opts keeps every field.
func AppendStored(dst []byte, resp Response, opts *Policy) []byte {
	var stack [16]string
	names := stack[:0]
	fields, size := 0, 1+3*binary.MaxVarintLen64+len(resp.Body)
	var connection []string
	if opts != nil {
		connection = ConnectionHeader(resp.Header)
	}
	for k, vs := range resp.Header {
		if k == HeaderRequestKey || opts != nil && !opts.Replayable(k, connection) {
			continue
		}
		names = append(names, k)
		fields += len(vs)
		for _, v := range vs {
			size += 2*binary.MaxVarintLen64 + len(k) + len(v)
		}
	}
	sort.Strings(names)
	dst = slices.Grow(dst, size)
	dst = append(dst, storedResponseVersion)
	dst = binary.AppendUvarint(dst, uint64(resp.Status))
	dst = binary.AppendUvarint(dst, uint64(fields))
	for _, k := range names {
		for _, v := range resp.Header[k] {
			dst = binary.AppendUvarint(dst, uint64(len(k)))
			dst = append(dst, k...)
			dst = binary.AppendUvarint(dst, uint64(len(v)))
			dst = append(dst, v...)
		}
	}
	dst = binary.AppendUvarint(dst, uint64(len(resp.Body)))
	return append(dst, resp.Body...)
}

// ErrStoredResponse is returned by DecodeStored for bytes AppendStored did
// not write.
var ErrStoredResponse = errors.New("malformed stored response")

// DecodeStored parses AppendStored's encoding. The header values and body
// of the result alias b.
func DecodeStored(b []byte) (Response, error) {
	if len(b) == 0 || b[0] != storedResponseVersion {
		return Response{}, ErrStoredResponse
	}
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	bytesOf := func() ([]byte, bool) {
		l, ok := uv()
		if !ok || l > uint64(len(b)) {
			return nil, false
		}
		out := b[:l:l]
		b = b[l:]
		return out, true
	}
	status, ok := uv()
	if !ok || status < 100 || status > 999 {
		return Response{}, ErrStoredResponse
	}
	fields, ok := uv()
	if !ok || fields > uint64(len(b)) {
		return Response{}, ErrStoredResponse
	}
	hdr := make(map[string][]string, fields)
	for range fields {
		k, ok1 := bytesOf()
		v, ok2 := bytesOf()
		if !ok1 || !ok2 {
			return Response{}, ErrStoredResponse
		}
		hdr[string(k)] = append(hdr[string(k)], string(v))
	}
	body, ok := bytesOf()
	if !ok || len(b) != 0 {
		return Response{}, ErrStoredResponse
	}
	return Response{Status: int(status), Header: hdr, Body: body}, nil
}

// Policy is a route's replay policy.
type Policy struct {
	// Replay lists, in canonical form, the withheld response headers the
	// route stores and replays anyway (mesh.ReplayHeaders).
	Replay []string
}

// withheldHeaders are the response headers never stored for replay unless
// the route opts in with ReplayHeaders: credentials, and hop-by-hop headers
// that describe one connection, not the response.
var withheldHeaders = map[string]bool{
	"Set-Cookie": true, "Set-Cookie2": true, "Authorization": true, "Proxy-Authorization": true, "Cookie": true,
	"Authentication-Info": true, "Proxy-Authentication-Info": true,
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// Replayable reports whether the response header name (of a response whose
// Connection header has the values connection) may be stored and replayed.
func (o *Policy) Replayable(name string, connection []string) bool {
	c := name
	if !withheldHeaders[c] {
		c = http.CanonicalHeaderKey(name) // a handler may set a header map entry in any case
	}
	hop := withheldHeaders[c]
	for _, v := range connection {
		for tok := range strings.SplitSeq(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(tok)) == c {
				hop = true
			}
		}
	}
	return !hop || slices.Contains(o.Replay, c)
}

// ConnectionHeader returns the values of h's Connection header in any case.
func ConnectionHeader(h map[string][]string) []string {
	if vs, ok := h["Connection"]; ok {
		return vs
	}
	for k, vs := range h {
		if strings.EqualFold(k, "Connection") {
			return vs
		}
	}
	return nil
}
