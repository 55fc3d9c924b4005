// Package api holds the HTTP handlers of the end-to-end test application.
package api

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"

	"meshgo.dev/mesh"
)

// List answers with the node that executed it and the continuity identity.
func List(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Executed-By", os.Getenv("MESH_NODE_NAME"))
	fmt.Fprintf(w, `{"handler":"api.List","method":%q,"path":%q,"attempt_id":%q,"epoch":%d}`+"\n", r.Method, r.URL.Path, id.AttemptID, id.Epoch)
}

// One is a count-1 clustered route.
func One(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}

// Retry is a count-3 clustered route: always refused.
func Retry(w http.ResponseWriter, r *http.Request) { panic("count 3 route must never run") }

// Plain is an ordinary net/http handler, the baseline of the benchmarks.
func Plain(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.One"}`+"\n")
}

var sessions atomic.Int64

// Session answers like a login: a fresh session cookie for every execution
// and a body naming the execution, so a test sees whose response it got.
func Session(w http.ResponseWriter, r *http.Request) {
	n := sessions.Add(1)
	node := os.Getenv("MESH_NODE_NAME")
	http.SetCookie(w, &http.Cookie{Name: "session", Value: fmt.Sprintf("%s-%d", node, n), HttpOnly: true})
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":"api.Session","execution":"%s-%d"}`+"\n", node, n)
}

// Large answers with a body of ?bytes=N bytes (default 60 KiB, at most
// 1 MiB): the retention tests fill the stored responses with it.
func Large(w http.ResponseWriter, r *http.Request) {
	size := 60 << 10
	if v, err := strconv.Atoi(r.URL.Query().Get("bytes")); err == nil && v >= 0 && v <= 1<<20 {
		size = v
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(bytes.Repeat([]byte{'x'}, size))
}

// Transfer is a count-2 route with a side effect the tests watch: each
// execution logs "[testapp] transfer ran" with its identity. While the file
// named by TESTAPP_HOLD_FILE exists, an execution holds after its side
// effect until its request ends, so a test can kill the node that ran it
// before any client hears back (a signal, not a sleep).
func Transfer(w http.ResponseWriter, r *http.Request) { transfer(w, r, "api.Transfer") }

// While TESTAPP_GATE_FIFO names a named pipe, an execution of a transfer
// route logs "[testapp] transfer gated" after its side effect, waits until
// the test writes to the pipe, then writes its answer and logs "[testapp]
// transfer returned" as it returns: the test knows the handler is done, not
// that the client was answered (the runtime holds the answer until the
// replica has the outcome).

// TransferRerun is Transfer declared mesh.Rerunnable: it fences with the
// epoch it logs, so it may run again for a request whose outcome is unknown.
func TransferRerun(w http.ResponseWriter, r *http.Request) { transfer(w, r, "api.TransferRerun") }

func transfer(w http.ResponseWriter, r *http.Request, name string) {
	id, _ := mesh.IdentityFrom(r.Context())
	node := os.Getenv("MESH_NODE_NAME")
	fmt.Fprintf(os.Stderr, "[testapp] transfer ran handler=%s node=%s request_key=%s attempt_id=%s epoch=%d\n",
		name, node, id.RequestKey, id.AttemptID, id.Epoch)
	if f := os.Getenv("TESTAPP_HOLD_FILE"); f != "" {
		if _, err := os.Stat(f); err == nil {
			fmt.Fprintf(os.Stderr, "[testapp] transfer held handler=%s node=%s\n", name, node)
			<-r.Context().Done()
			return
		}
	}
	gated := false
	if f := os.Getenv("TESTAPP_GATE_FIFO"); f != "" {
		if fi, err := os.Stat(f); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
			gated = true
			fmt.Fprintf(os.Stderr, "[testapp] transfer gated handler=%s node=%s\n", name, node)
			if p, err := os.OpenFile(f, os.O_RDONLY, 0); err == nil { // blocks until the test opens it to write
				var b [1]byte
				_, _ = p.Read(b[:])
				p.Close()
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"handler":%q,"node":%q,"attempt_id":%q,"epoch":%d}`+"\n", name, node, id.AttemptID, id.Epoch)
	if gated {
		fmt.Fprintf(os.Stderr, "[testapp] transfer returned handler=%s node=%s request_key=%s\n", name, node, id.RequestKey)
	}
}
