package cluster_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// A count-2 route request whose owner is its ingress: the owner is SIGKILLed
// right after the handler returned. The handler holds, after its side
// effect, on a named pipe the test writes to, and logs when it returns.
//
//   - "before the client had the response": the replica is frozen (SIGSTOP,
//     and every thread of it seen stopped) before the handler is let go, so the owner cannot hear it hold the
//     outcome; the handler returns, the owner's record completes, and the
//     client still has no response (the owner waits for the replica). The
//     owner is killed and the replica resumed: it reads the completed record
//     the owner sent before dying.
//   - "after the client had the response": the client's 200 arrives, then
//     the owner is killed.
//
// Either way the retry of the same Idempotency-Key on the survivor gets 200
// and the body the handler wrote, and the handler ran once.
func TestRouteOutcomeSurvivesOwnerKilledAfterHandler(t *testing.T) {
	for _, tc := range []struct {
		name        string
		beforeReply bool
	}{
		{"before the client had the response", true},
		{"after the client had the response", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			gate := filepath.Join(h.dir, "gate-"+strings.ReplaceAll(tc.name, " ", "-"))
			// The peer timeout is well above the time the replica stays
			// frozen, so neither node gives the other up meanwhile.
			p, s := readyPair(t, h, "TESTAPP_GATE_FIFO="+gate, "MESH_PEER_TIMEOUT_MS=8000")

			type answer struct {
				code int
				body string
				err  error
			}
			send := func(n *node, clientKey string) (answer, http.Header) {
				req, err := http.NewRequest(http.MethodGet, n.http+"/transfer", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Idempotency-Key", clientKey)
				resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
				if err != nil {
					return answer{err: err}, nil
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return answer{code: resp.StatusCode, body: strings.TrimSpace(string(b))}, resp.Header
			}

			// The request key scopes the client key by caller; learn the
			// caller's prefix from a probe (the gate does not exist yet), then
			// pick a client key whose request the ingress owns.
			probe, hdr := send(p, "probe")
			if probe.err != nil || probe.code != http.StatusOK {
				t.Fatalf("probe: %+v", probe)
			}
			prefix, ok := strings.CutSuffix(hdr.Get("X-Mesh-Continuity-Request-Key"), "::probe")
			if !ok {
				t.Fatalf("probe request key %q", hdr.Get("X-Mesh-Continuity-Request-Key"))
			}
			members := continuity.CanonicalMembership([]string{p.name, s.name})
			var clientKey, key string
			for i := range 1000 {
				ck := fmt.Sprintf("transfer-%d", i)
				if k := prefix + "::" + ck; continuity.PlaceCanonical(k, members).Owner == p.name {
					clientKey, key = ck, k
					break
				}
			}
			if key == "" {
				t.Fatal("no client key places its request on the ingress")
			}
			runs := func() [][]string {
				var out [][]string
				for _, n := range []*node{p, s} {
					for _, m := range transferRan.FindAllStringSubmatch(n.proc.Log(), -1) {
						if m[3] == key {
							out = append(out, m)
						}
					}
				}
				return out
			}

			if err := syscall.Mkfifo(gate, 0o600); err != nil {
				t.Fatal(err)
			}
			first := make(chan answer, 1)
			go func() { a, _ := send(p, clientKey); first <- a }()
			p.proc.WaitLog(t, "[testapp] transfer gated handler=api.Transfer node="+p.name, 15*time.Second)
			h.waitRecord(s, key, 10*time.Second, pendingMirrored)
			r := runs()
			if len(r) != 1 || r[0][2] != p.name {
				t.Fatalf("executions %v, want one on the owner %s", r, p.name)
			}
			want := fmt.Sprintf(`{"handler":"api.Transfer","node":%q,"attempt_id":%q,"epoch":0}`, p.name, r[0][4])

			if tc.beforeReply {
				// The replica must be frozen before the handler goes: SIGSTOP
				// stops a process only once one of its threads is scheduled
				// to take it, and meanwhile the others run on (under load,
				// long enough to answer the owner's Held).
				s.proc.Stop()
				waitFrozen(t, s)
			}
			release(t, gate)
			p.proc.WaitLog(t, "[testapp] transfer returned handler=api.Transfer node="+p.name+" request_key="+key, 10*time.Second)
			if tc.beforeReply {
				// The owner completed the record and sent it on; its answer
				// waits for the frozen replica.
				h.waitRecord(p, key, 5*time.Second, completed)
				select {
				case a := <-first:
					t.Fatalf("the client was answered (%+v) while the replica could not acknowledge", a)
				default:
				}
				p.proc.Kill()
				s.proc.Cont()
				if a := <-first; a.err == nil {
					t.Fatalf("the client was answered (%d %s) by an owner killed before the replica's acknowledgement", a.code, a.body)
				}
			} else {
				a := <-first
				if a.err != nil || a.code != http.StatusOK || a.body != want {
					t.Fatalf("first answer %+v, want 200 %s", a, want)
				}
				p.proc.Kill()
			}
			h.waitRecord(s, key, 10*time.Second, completed)
			retry, _ := send(s, clientKey)
			if retry.err != nil || retry.code != http.StatusOK || retry.body != want {
				t.Fatalf("retry on the survivor: %+v, want 200 %s", retry, want)
			}
			if r := runs(); len(r) != 1 {
				t.Fatalf("handler ran %d times, want once: %v", len(r), r)
			}
		})
	}
}

// release lets one gated handler go: opening the pipe to write waits for
// the handler reading it.
func release(t *testing.T, gate string) {
	t.Helper()
	f, err := os.OpenFile(gate, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
}
