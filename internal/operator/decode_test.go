package operator

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRejectsMalformed(t *testing.T) {
	validRecord := `{"attempt_id":"attempt-1","cluster_role":"primary","completed_at":null,"declared_handler_runtime_name":"","error":"","execution_node":"","fell_back_locally":true,"ingress_node":"a@h:1","owner_node":"a@h:1","payload_hash":"h","phase":"submitted","promotion_epoch":0,"replica_node":"","replica_status":"unassigned","replication_count":1,"replication_health":"local_only","request_key":"k","result":"pending","routed_remotely":false,"submitted_at":null}`
	withRecord := func(old, new string) string {
		return `{"record":` + strings.Replace(validRecord, old, new, 1) + `,"target":""}`
	}
	tests := []struct {
		name    string
		kind    Kind
		body    string
		wantErr string // substring; "" means the body is valid
	}{
		{"status valid", KindStatus, `{"authority":{"cluster_role":"standby","promotion_epoch":2,"replication_health":"degraded"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"target":""}`, ""},
		{"empty body", KindStatus, ``, "status: document"},
		{"not an object", KindStatus, `[]`, "status: document"},
		{"null document", KindStatus, `null`, "null, want an object"},
		{"status missing membership", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":0,"replication_health":"healthy"},"target":""}`, "missing required membership"},
		{"status null peer list", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":0,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":null},"target":""}`, "missing required membership.peer_nodes"},
		{"status unknown safety mode", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":0,"replication_health":"healthy","safety_mode":"raft"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"target":""}`, `invalid authority.safety_mode "raft"`},
		{"status unknown role", KindStatus, `{"authority":{"cluster_role":"leader","promotion_epoch":0,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":[],"peer_nodes":[]},"target":""}`, `invalid authority.cluster_role "leader"`},
		{"status negative epoch", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":-1,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":[],"peer_nodes":[]},"target":""}`, "cannot unmarshal"},
		{"status with peers and readiness", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":1,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":["a@h:1","b@h:1"],"peer_nodes":["b@h:1"]},"peers":[{"cluster_role":"standby","heartbeat_age_ms":12,"link_state":"connected","node":"b@h:1","promotion_epoch":1}],"readiness":{"ready":true,"reason":null},"target":""}`, ""},
		{"status peer never heard", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":1,"replication_health":"local_only"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"peers":[{"cluster_role":null,"heartbeat_age_ms":null,"link_state":"disconnected","node":"b@h:1","promotion_epoch":null}],"readiness":{"ready":false,"reason":"awaiting_peer"},"target":""}`, ""},
		{"status unknown link state", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":1,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"peers":[{"link_state":"flaky","node":"b@h:1"}],"target":""}`, `invalid peers[0].link_state "flaky"`},
		{"status peer without name", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":1,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"peers":[{"link_state":"connected","node":""}],"target":""}`, "peers[0].node is empty"},
		{"status not ready without reason", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":1,"replication_health":"healthy"},"membership":{"local_node":"a@h:1","nodes":["a@h:1"],"peer_nodes":[]},"peers":[],"readiness":{"ready":false,"reason":null},"target":""}`, "readiness.reason is empty"},
		{"status empty local node", KindStatus, `{"authority":{"cluster_role":"primary","promotion_epoch":0,"replication_health":"healthy"},"membership":{"local_node":"","nodes":[],"peer_nodes":[]},"target":""}`, "local_node is empty"},
		{"record valid", KindContinuityLookup, withRecord("", ""), ""},
		{"record valid with unknown key", KindContinuityLookup, withRecord(`"attempt_id"`, `"future_field":{"x":1},"attempt_id"`), ""},
		{"record missing phase", KindContinuityLookup, withRecord(`"phase":"submitted",`, ""), "missing required record.phase"},
		{"record null owner", KindContinuityLookup, withRecord(`"owner_node":"a@h:1"`, `"owner_node":null`), "missing required record.owner_node"},
		{"record empty key", KindContinuityLookup, withRecord(`"request_key":"k"`, `"request_key":""`), "request_key is empty"},
		{"record phase result mismatch", KindContinuityLookup, withRecord(`"result":"pending"`, `"result":"succeeded"`), `phase "submitted" with result "succeeded"`},
		{"record unknown replica status", KindContinuityLookup, withRecord(`"replica_status":"unassigned"`, `"replica_status":"lost"`), "invalid replica_status"},
		{"record bad time", KindContinuityLookup, withRecord(`"completed_at":null`, `"completed_at":"yesterday"`), "continuity record:"},
		{"record wrong type", KindContinuityLookup, withRecord(`"routed_remotely":false`, `"routed_remotely":"no"`), "cannot unmarshal"},
		{"list valid", KindContinuityList, `{"records":[` + validRecord + `],"target":"","total_records":4,"truncated":true}`, ""},
		{"list null records", KindContinuityList, `{"records":null,"target":"","total_records":0,"truncated":false}`, "missing required records"},
		{"list record missing key", KindContinuityList, `{"records":[{}],"target":"","total_records":1,"truncated":false}`, "missing required records[0].attempt_id"},
		{"list record not an object", KindContinuityList, `{"records":[7],"target":"","total_records":1,"truncated":false}`, "records[0]"},
		{"list total below count", KindContinuityList, `{"records":[` + validRecord + `],"target":"","total_records":0,"truncated":false}`, "total_records 0 is less than"},
		{"diagnostics valid", KindDiagnostics, `{"buffer_capacity":128,"dropped_entries":0,"entries":[{"metadata":[{"key":"a","value":"b"}],"promotion_epoch":0,"sequence":1,"transition":"submit"}],"target":"","total_entries":1,"truncated":false}`, ""},
		{"diagnostics missing truncated", KindDiagnostics, `{"buffer_capacity":128,"dropped_entries":0,"entries":[],"target":"","total_entries":0}`, "missing required truncated"},
		{"diagnostics metadata pair missing value", KindDiagnostics, `{"buffer_capacity":128,"dropped_entries":0,"entries":[{"metadata":[{"key":"a"}],"promotion_epoch":0,"sequence":1,"transition":"submit"}],"target":"","total_entries":1,"truncated":false}`, "missing required entries[0].metadata[0].value"},
		{"diagnostics empty transition", KindDiagnostics, `{"buffer_capacity":128,"dropped_entries":0,"entries":[{"metadata":[],"promotion_epoch":0,"sequence":1,"transition":""}],"target":"","total_entries":1,"truncated":false}`, "transition is empty"},
		{"unknown kind", Kind(7), `{}`, "invalid operator query kind 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeReply(tc.kind, []byte(tc.body))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("decoded, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// FuzzDecodeReply feeds arbitrary bodies to every decoder. Properties: no
// panic; whatever decodes re-encodes to a document that decodes to the same
// value.
func FuzzDecodeReply(f *testing.F) {
	kinds := map[string]Kind{
		"status":            KindStatus,
		"continuity_record": KindContinuityLookup,
		"continuity_list":   KindContinuityList,
		"diagnostics":       KindDiagnostics,
	}
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.json.golden"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		base := strings.TrimSuffix(filepath.Base(p), ".json.golden")
		for prefix, k := range kinds {
			if strings.HasPrefix(base, prefix) {
				f.Add(uint8(k), b)
			}
		}
	}
	f.Add(uint8(KindStatus), []byte(`{}`))
	f.Add(uint8(KindContinuityList), []byte(`{"records":[{}]}`))
	f.Add(uint8(KindDiagnostics), []byte(`{"entries":[{"metadata":[null]}]}`))
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		k := Kind(kind % 4)
		report, err := DecodeReply(k, body)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := WriteJSON(&buf, report); err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeReply(k, buf.Bytes())
		if err != nil {
			t.Fatalf("re-encoded document does not decode: %v\n%s", err, buf.Bytes())
		}
		if !reflect.DeepEqual(normalize(t, report), normalize(t, again)) {
			t.Fatalf("round trip changed the document:\n%s", buf.Bytes())
		}
		if err := report.WriteText(&bytes.Buffer{}); err != nil {
			t.Fatalf("WriteText: %v", err)
		}
	})
}

// normalize compares documents through their JSON form, which ignores time
// zone representation details that DeepEqual would see.
func normalize(t *testing.T, r Report) any {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}
