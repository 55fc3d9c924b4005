package operator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"meshgo.dev/mesh/internal/continuity"
)

// The Decode functions parse a reply body and check it against the contract
// before meshc prints anything: every required key is present and not null,
// enum values are known, identity fields are not empty, and arrays are not
// null. Unknown keys are ignored so an older meshc can read a newer node.
// They never panic, whatever the input.

// Report is a decoded reply document: *Status, *ContinuityRecord,
// *ContinuityList, *Diagnostics or *Switchover.
type Report interface {
	// SetTarget records the node name the operator queried.
	SetTarget(target string)
	// WriteText writes the human-readable form of the document.
	WriteText(w io.Writer) error
}

// SetTarget sets s.Target.
func (s *Status) SetTarget(target string) { s.Target = target }

// SetTarget sets c.Target.
func (c *ContinuityRecord) SetTarget(target string) { c.Target = target }

// SetTarget sets l.Target.
func (l *ContinuityList) SetTarget(target string) { l.Target = target }

// SetTarget sets d.Target.
func (d *Diagnostics) SetTarget(target string) { d.Target = target }

// DecodeReply decodes the body of an OK reply to a query of kind k. On error
// the Report is nil.
func DecodeReply(k Kind, body []byte) (Report, error) {
	switch k {
	case KindStatus:
		return decodeAs(DecodeStatus, body)
	case KindContinuityLookup:
		return decodeAs(DecodeContinuityRecord, body)
	case KindContinuityList:
		return decodeAs(DecodeContinuityList, body)
	case KindDiagnostics:
		return decodeAs(DecodeDiagnostics, body)
	case KindSwitchover:
		return decodeAs(DecodeSwitchover, body)
	}
	return nil, fmt.Errorf("invalid operator query kind %d", uint8(k))
}

// decodeAs runs decode and returns a pointer to its result as a Report.
func decodeAs[T any, P interface {
	*T
	Report
}](decode func([]byte) (T, error), body []byte) (Report, error) {
	v, err := decode(body)
	if err != nil {
		return nil, err
	}
	return P(&v), nil
}

// DecodeStatus decodes and validates a status document.
func DecodeStatus(body []byte) (Status, error) {
	var s Status
	err := decodeObject(body, "status", &s, func(o object) error {
		if err := o.require("authority", "membership", "target"); err != nil {
			return err
		}
		if err := o.sub("authority", func(a object) error {
			return a.require("cluster_role", "promotion_epoch", "replication_health")
		}); err != nil {
			return err
		}
		return o.sub("membership", func(m object) error {
			return m.require("local_node", "nodes", "peer_nodes")
		})
	})
	if err != nil {
		return Status{}, err
	}
	switch {
	case !validRole(s.Authority.ClusterRole):
		return Status{}, invalidValue("status", "authority.cluster_role", string(s.Authority.ClusterRole))
	case !validHealth(s.Authority.ReplicationHealth):
		return Status{}, invalidValue("status", "authority.replication_health", string(s.Authority.ReplicationHealth))
	case s.Authority.SafetyMode != "" && !validSafetyMode(s.Authority.SafetyMode):
		return Status{}, invalidValue("status", "authority.safety_mode", s.Authority.SafetyMode)
	case s.Authority.Lease != nil && (s.Authority.Lease.Holder == "" || s.Authority.Lease.Epoch == 0):
		return Status{}, errors.New("status: authority.lease has no holder or epoch")
	case s.Membership.LocalNode == "":
		return Status{}, errors.New("status: membership.local_node is empty")
	case s.Readiness != nil && !s.Readiness.Ready && (s.Readiness.Reason == nil || *s.Readiness.Reason == ""):
		return Status{}, errors.New("status: readiness.reason is empty on a node that is not ready")
	}
	for i, p := range s.Peers {
		switch {
		case p.Node == "":
			return Status{}, fmt.Errorf("status: peers[%d].node is empty", i)
		case p.LinkState != LinkConnected && p.LinkState != LinkSyncing && p.LinkState != LinkDisconnected:
			return Status{}, invalidValue("status", fmt.Sprintf("peers[%d].link_state", i), string(p.LinkState))
		case p.ClusterRole != nil && !validRole(*p.ClusterRole):
			return Status{}, invalidValue("status", fmt.Sprintf("peers[%d].cluster_role", i), string(*p.ClusterRole))
		}
	}
	return s, nil
}

// DecodeContinuityRecord decodes and validates a single-record document.
func DecodeContinuityRecord(body []byte) (ContinuityRecord, error) {
	var c ContinuityRecord
	err := decodeObject(body, "continuity record", &c, func(o object) error {
		if err := o.require("record", "target"); err != nil {
			return err
		}
		return o.sub("record", checkRecordKeys)
	})
	if err != nil {
		return ContinuityRecord{}, err
	}
	if err := validateRecord(c.Record); err != nil {
		return ContinuityRecord{}, fmt.Errorf("continuity record: %w", err)
	}
	if err := validateResult(c.ResultEncoding, c.ResultValue); err != nil {
		return ContinuityRecord{}, fmt.Errorf("continuity record: %w", err)
	}
	return c, nil
}

// DecodeContinuityList decodes and validates a record list document.
func DecodeContinuityList(body []byte) (ContinuityList, error) {
	var l ContinuityList
	err := decodeObject(body, "continuity list", &l, func(o object) error {
		if err := o.require("records", "target", "total_records", "truncated"); err != nil {
			return err
		}
		return o.each("records", checkRecordKeys)
	})
	if err != nil {
		return ContinuityList{}, err
	}
	for i, r := range l.Records {
		if err := validateRecord(r); err != nil {
			return ContinuityList{}, fmt.Errorf("continuity list: records[%d]: %w", i, err)
		}
	}
	if l.TotalRecords < len(l.Records) {
		return ContinuityList{}, fmt.Errorf("continuity list: total_records %d is less than the %d records returned", l.TotalRecords, len(l.Records))
	}
	return l, nil
}

// DecodeDiagnostics decodes and validates a diagnostics document.
func DecodeDiagnostics(body []byte) (Diagnostics, error) {
	var d Diagnostics
	err := decodeObject(body, "diagnostics", &d, func(o object) error {
		if err := o.require("buffer_capacity", "dropped_entries", "entries", "target", "total_entries", "truncated"); err != nil {
			return err
		}
		return o.each("entries", func(e object) error {
			if err := e.require("metadata", "promotion_epoch", "sequence", "transition"); err != nil {
				return err
			}
			return e.each("metadata", func(m object) error { return m.require("key", "value") })
		})
	})
	if err != nil {
		return Diagnostics{}, err
	}
	for i, e := range d.Entries {
		if e.Transition == "" {
			return Diagnostics{}, fmt.Errorf("diagnostics: entries[%d]: transition is empty", i)
		}
	}
	if d.TotalEntries < len(d.Entries) {
		return Diagnostics{}, fmt.Errorf("diagnostics: total_entries %d is less than the %d entries returned", d.TotalEntries, len(d.Entries))
	}
	return d, nil
}

// recordKeys are the keys every record object carries; only the two times
// may be null.
var recordKeys = []string{
	"attempt_id", "cluster_role", "declared_handler_runtime_name", "error",
	"execution_node", "fell_back_locally", "ingress_node", "owner_node",
	"payload_hash", "phase", "promotion_epoch", "replica_node", "replica_status",
	"replication_count", "replication_health", "request_key", "result",
	"routed_remotely",
}

func checkRecordKeys(o object) error { return o.require(recordKeys...) }

// validateResult checks a lookup's result_encoding against its result_value:
// both null (or absent), JSON inline, or a base64 string.
func validateResult(enc *string, value json.RawMessage) error {
	null := len(bytes.TrimSpace(value)) == 0 || bytes.Equal(bytes.TrimSpace(value), []byte("null"))
	switch {
	case enc == nil && null:
		return nil
	case enc == nil:
		return errors.New("result_value without result_encoding")
	case *enc == ResultEncodingJSON:
		if len(bytes.TrimSpace(value)) == 0 {
			return errors.New("result_encoding json without result_value")
		}
		return nil // inline JSON (null included): parsing the document checked it
	case *enc == ResultEncodingBase64:
		var s string
		if err := json.Unmarshal(value, &s); err != nil {
			return fmt.Errorf("result_value: base64 result is not a string")
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return fmt.Errorf("result_value: %w", err)
		}
		return nil
	}
	return fmt.Errorf("invalid result_encoding %q", *enc)
}

func validateRecord(r Record) error {
	switch {
	case r.RequestKey == "":
		return errors.New("request_key is empty")
	case r.AttemptID == "":
		return fmt.Errorf("record %s: attempt_id is empty", r.RequestKey)
	case r.OwnerNode == "":
		return fmt.Errorf("record %s: owner_node is empty", r.RequestKey)
	case !validRole(r.ClusterRole):
		return invalidValue("record "+r.RequestKey, "cluster_role", string(r.ClusterRole))
	case !validHealth(r.ReplicationHealth):
		return invalidValue("record "+r.RequestKey, "replication_health", string(r.ReplicationHealth))
	case !validReplicaStatus(r.ReplicaStatus):
		return invalidValue("record "+r.RequestKey, "replica_status", string(r.ReplicaStatus))
	case !validPhaseResult(r.Phase, r.Result):
		return fmt.Errorf("record %s: phase %q with result %q", r.RequestKey, r.Phase, r.Result)
	}
	return nil
}

func invalidValue(doc, key, value string) error {
	return fmt.Errorf("%s: invalid %s %q", doc, key, value)
}

func validRole(r continuity.Role) bool {
	return r == continuity.RolePrimary || r == continuity.RoleStandby
}

func validHealth(h continuity.Health) bool {
	switch h {
	case continuity.HealthLocalOnly, continuity.HealthHealthy, continuity.HealthDegraded, continuity.HealthUnavailable:
		return true
	}
	return false
}

func validReplicaStatus(s continuity.ReplicaStatus) bool {
	switch s {
	case continuity.ReplicaUnassigned, continuity.ReplicaPreparing, continuity.ReplicaMirrored,
		continuity.ReplicaOwnerLost, continuity.ReplicaRejected, continuity.ReplicaDegradedContinuing:
		return true
	}
	return false
}

func validPhaseResult(p continuity.Phase, r continuity.Result) bool {
	switch p {
	case continuity.PhaseSubmitted:
		return r == continuity.ResultPending
	case continuity.PhaseCompleted:
		return r == continuity.ResultSucceeded
	case continuity.PhaseRejected:
		return r == continuity.ResultRejected
	}
	return false
}

// decodeObject checks the key structure of body with check, then decodes it
// into v. Errors are prefixed with doc.
func decodeObject(body []byte, doc string, v any, check func(object) error) error {
	o, err := parseObject(body)
	if err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	if err := check(o); err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: %w", doc, err)
	}
	return nil
}

// object is one JSON object split into its raw member values, used to tell
// a missing or null key apart from a zero value.
type object struct {
	path    string // where the object sits, "" for the document root
	members map[string]json.RawMessage
}

func parseObject(raw []byte) (object, error) {
	return parseObjectAt("", raw)
}

func parseObjectAt(path string, raw []byte) (object, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return object{}, fmt.Errorf("%s: %w", describe(path), err)
	}
	if members == nil {
		return object{}, fmt.Errorf("%s is null, want an object", describe(path))
	}
	return object{path: path, members: members}, nil
}

func describe(path string) string {
	if path == "" {
		return "document"
	}
	return path
}

func (o object) key(k string) string {
	if o.path == "" {
		return k
	}
	return o.path + "." + k
}

// require fails unless every key is present and not null.
func (o object) require(keys ...string) error {
	var missing []string
	for _, k := range keys {
		v, ok := o.members[k]
		if !ok || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			missing = append(missing, o.key(k))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required %s", strings.Join(missing, ", "))
	}
	return nil
}

// sub runs check on the object stored under k, which must be present.
func (o object) sub(k string, check func(object) error) error {
	inner, err := parseObjectAt(o.key(k), o.members[k])
	if err != nil {
		return err
	}
	return check(inner)
}

// each runs check on every element of the array stored under k, which must
// be present.
func (o object) each(k string, check func(object) error) error {
	var elems []json.RawMessage
	if err := json.Unmarshal(o.members[k], &elems); err != nil {
		return fmt.Errorf("%s: %w", o.key(k), err)
	}
	for i, raw := range elems {
		inner, err := parseObjectAt(fmt.Sprintf("%s[%d]", o.key(k), i), raw)
		if err != nil {
			return err
		}
		if err := check(inner); err != nil {
			return err
		}
	}
	return nil
}

// validSafetyMode reports whether m is a safety mode a node may report.
func validSafetyMode(m string) bool { return m == "peer" || m == "postgres" || m == "etcd" }
