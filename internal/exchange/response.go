package exchange

import (
	"bytes"
	"net/http"
	"sync"
)

// HeaderRequestKey carries the continuity request key on every response of a
// clustered route. A stored response never keeps it: a replay carries the
// key of the request it answers.
const HeaderRequestKey = "X-Mesh-Continuity-Request-Key"

// Response is a buffered handler response.
type Response struct {
	Status int
	Header map[string][]string
	Body   []byte
	rc     *Recorder // the buffers Header and Body live in, when pooled
}

// WriteTo writes the response to w, leaving out HeaderRequestKey (the
// caller sets the key of the request being answered).
func (rr Response) WriteTo(w http.ResponseWriter) {
	dst := w.Header()
	for k, vs := range rr.Header {
		if k == HeaderRequestKey {
			continue
		}
		dst[k] = vs // the Recorder's header belongs to this response alone
	}
	w.WriteHeader(rr.Status)
	_, _ = w.Write(rr.Body)
}

// Release returns the response's buffers for reuse; rr must not be used
// afterwards.
func (rr Response) Release() {
	if rr.rc != nil {
		rr.rc.Release()
	}
}

// Recorder is the http.ResponseWriter a clustered route handler writes to:
// it buffers the response, from a pool. Response hands the buffers out.
type Recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

// maxPooledBody is the largest response body buffer kept for reuse.
const maxPooledBody = 64 << 10

var recorders = sync.Pool{New: func() any { return &Recorder{header: http.Header{}} }}

// NewRecorder returns an empty recorder from the pool.
func NewRecorder() *Recorder { return recorders.Get().(*Recorder) }

// Release clears c and returns it to the pool. The header's value slices
// were handed to the real response and are dropped, never reused.
func (c *Recorder) Release() {
	if c.body.Cap() > maxPooledBody || len(c.header) > 64 {
		return
	}
	clear(c.header)
	c.status = 0
	c.body.Reset()
	recorders.Put(c)
}

// Response returns what the handler wrote, 200 if it wrote nothing. The
// response owns c's buffers: releasing it releases c.
func (c *Recorder) Response() Response {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return Response{Status: c.status, Header: c.header, Body: c.body.Bytes(), rc: c}
}

// Header implements http.ResponseWriter.
func (c *Recorder) Header() http.Header { return c.header }

// WriteHeader implements http.ResponseWriter; the first status wins.
func (c *Recorder) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}

// Write implements http.ResponseWriter.
func (c *Recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
