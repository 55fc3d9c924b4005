package operator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Human-readable output. Documents print as "key: value" lines whose values
// start in one column; lists print one "- key=value ..." line per element.
// Values that would not read back as one token (empty ones aside) are quoted
// Go-style, so an error text with spaces stays on its field.

// WriteJSON writes v as the CLI prints it: 2-space indented JSON without HTML
// escaping, followed by a newline.
func WriteJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteText writes the status as aligned key: value lines, with the peer and
// node lists one name per line.
func (s *Status) WriteText(w io.Writer) error {
	var t text
	t.kv("target", s.Target)
	t.kv("local_node", s.Membership.LocalNode)
	t.list("peer_nodes", s.Membership.PeerNodes)
	t.list("nodes", s.Membership.Nodes)
	t.kv("cluster_role", string(s.Authority.ClusterRole))
	t.kv("promotion_epoch", strconv.FormatUint(s.Authority.PromotionEpoch, 10))
	t.kv("replication_health", string(s.Authority.ReplicationHealth))
	if s.Authority.SafetyMode != "" {
		t.kv("safety_mode", s.Authority.SafetyMode)
	}
	if l := s.Authority.Lease; l != nil {
		t.kv("lease", fmt.Sprintf("holder=%s epoch=%d expires_in_ms=%d", l.Holder, l.Epoch, l.ExpiresInMS))
	} else if s.Authority.SafetyMode != "" && s.Authority.SafetyMode != "peer" {
		t.kv("lease", "(none)")
	}
	if r := s.Authority.LastPromotionRefusal; r != nil {
		t.kv("last_promotion_refusal", *r)
	}
	if r := s.Readiness; r != nil {
		if r.Ready {
			t.kv("readiness", "ready")
		} else {
			t.kv("readiness", "not_ready ("+deref(r.Reason)+")")
		}
	}
	if s.Peers != nil {
		if len(s.Peers) == 0 {
			t.kv("peers", "(none)")
		} else {
			t.heading("peers")
		}
		for _, p := range s.Peers {
			role, epoch, age, proto := "unknown", "unknown", "never", "none"
			if p.ClusterRole != nil {
				role = string(*p.ClusterRole)
			}
			if p.PromotionEpoch != nil {
				epoch = strconv.FormatUint(*p.PromotionEpoch, 10)
			}
			if p.HeartbeatAgeMS != nil {
				age = strconv.FormatInt(*p.HeartbeatAgeMS, 10)
			}
			if p.ProtocolVersion != nil {
				proto = strconv.Itoa(int(*p.ProtocolVersion))
			}
			t.item("node", p.Node, "link_state", string(p.LinkState), "cluster_role", role,
				"promotion_epoch", epoch, "heartbeat_age_ms", age, "protocol_version", proto)
		}
	}
	return t.writeTo(w)
}

// WriteText writes the record as aligned key: value lines. The payload hash
// is left out; it is noise to an operator and stays in the JSON form.
func (c *ContinuityRecord) WriteText(w io.Writer) error {
	var t text
	r := &c.Record
	t.kv("target", c.Target)
	t.kv("request_key", r.RequestKey)
	t.kv("attempt_id", r.AttemptID)
	t.kv("phase", string(r.Phase))
	t.kv("result", string(r.Result))
	t.kv("ingress_node", r.IngressNode)
	t.kv("owner_node", r.OwnerNode)
	t.kv("replica_node", r.ReplicaNode)
	t.kv("replication_count", strconv.FormatUint(r.ReplicationCount, 10))
	t.kv("execution_node", r.ExecutionNode)
	t.kv("declared_handler_runtime_name", r.DeclaredHandlerRuntimeName)
	t.kv("replica_status", string(r.ReplicaStatus))
	t.kv("cluster_role", string(r.ClusterRole))
	t.kv("promotion_epoch", strconv.FormatUint(r.PromotionEpoch, 10))
	t.kv("replication_health", string(r.ReplicationHealth))
	t.kv("routed_remotely", strconv.FormatBool(r.RoutedRemotely))
	t.kv("fell_back_locally", strconv.FormatBool(r.FellBackLocally))
	t.kv("error", r.Error)
	t.kv("submitted_at", formatTime(r.SubmittedAt))
	t.kv("completed_at", formatTime(r.CompletedAt))
	if c.ResultEncoding != nil {
		var value bytes.Buffer
		if err := json.Compact(&value, c.ResultValue); err != nil {
			value.Reset()
			value.Write(c.ResultValue)
		}
		t.kv("result_encoding", *c.ResultEncoding)
		t.kv("result_value", value.String())
	} else {
		t.kv("result_encoding", "")
		t.kv("result_value", "")
	}
	return t.writeTo(w)
}

// WriteText writes the list header and one line per record.
func (l *ContinuityList) WriteText(w io.Writer) error {
	var t text
	t.kv("target", l.Target)
	t.kv("total_records", strconv.Itoa(l.TotalRecords))
	t.kv("truncated", strconv.FormatBool(l.Truncated))
	if len(l.Records) == 0 {
		t.kv("records", "(none)")
		return t.writeTo(w)
	}
	t.heading("records")
	for i := range l.Records {
		r := &l.Records[i]
		t.item(
			"request_key", r.RequestKey,
			"attempt_id", r.AttemptID,
			"phase", string(r.Phase),
			"result", string(r.Result),
			"owner", r.OwnerNode,
			"replica", r.ReplicaNode,
			"replication_count", strconv.FormatUint(r.ReplicationCount, 10),
			"execution", r.ExecutionNode,
			"declared_handler_runtime_name", r.DeclaredHandlerRuntimeName,
			"replica_status", string(r.ReplicaStatus),
			"cluster_role", string(r.ClusterRole),
			"promotion_epoch", strconv.FormatUint(r.PromotionEpoch, 10),
			"replication_health", string(r.ReplicationHealth),
			"error", r.Error,
		)
	}
	return t.writeTo(w)
}

// WriteText writes the diagnostics header, then one line per entry followed
// by one indented key=value line per metadata pair.
func (d *Diagnostics) WriteText(w io.Writer) error {
	var t text
	t.kv("target", d.Target)
	t.kv("total_entries", strconv.Itoa(d.TotalEntries))
	t.kv("dropped_entries", strconv.FormatUint(d.DroppedEntries, 10))
	t.kv("buffer_capacity", strconv.Itoa(d.BufferCapacity))
	t.kv("truncated", strconv.FormatBool(d.Truncated))
	if len(d.Entries) == 0 {
		t.kv("entries", "(none)")
		return t.writeTo(w)
	}
	t.heading("entries")
	for i := range d.Entries {
		e := &d.Entries[i]
		t.item(
			"seq", strconv.FormatUint(e.Sequence, 10),
			"transition", e.Transition,
			"request_key", deref(e.RequestKey),
			"attempt_id", deref(e.AttemptID),
			"owner", deref(e.OwnerNode),
			"replica", deref(e.ReplicaNode),
			"execution", deref(e.ExecutionNode),
			"cluster_role", deref(e.ClusterRole),
			"promotion_epoch", strconv.FormatUint(e.PromotionEpoch, 10),
			"replication_health", deref(e.ReplicationHealth),
			"replica_status", deref(e.ReplicaStatus),
			"reason", deref(e.Reason),
			"time", formatTime(e.Time),
		)
		for _, m := range e.Metadata {
			t.raw("    " + m.Key + "=" + quote(m.Value))
		}
	}
	return t.writeTo(w)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func formatTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// quote returns s unchanged when it reads back as one key=value token, and
// Go-quoted otherwise.
func quote(s string) string {
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r == 0x7f || !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// text collects the lines of one document so the key: value lines can be
// aligned to the longest key before anything is written.
type text struct {
	lines []textLine
	width int // longest "key:" among aligned lines
}

type textLine struct {
	key   string // "" for a raw line
	value string
}

// kv adds an aligned "key: value" line.
func (t *text) kv(key, value string) {
	t.width = max(t.width, len(key)+1)
	if strings.ContainsFunc(value, func(r rune) bool { return !strconv.IsPrint(r) }) {
		value = strconv.Quote(value) // keep one value on one line
	}
	t.lines = append(t.lines, textLine{key: key, value: value})
}

// heading adds a "key:" line that introduces the raw lines after it.
func (t *text) heading(key string) { t.kv(key, "") }

// list adds a heading followed by one "  - value" line per value, or
// "  - (none)" when there are none.
func (t *text) list(key string, values []string) {
	t.heading(key)
	if len(values) == 0 {
		t.raw("  - (none)")
	}
	for _, v := range values {
		t.raw("  - " + v)
	}
}

// item adds a "- k=v k=v ..." line from alternating keys and values.
func (t *text) item(kvs ...string) {
	var b strings.Builder
	b.WriteString("-")
	for i := 0; i+1 < len(kvs); i += 2 {
		b.WriteString(" ")
		b.WriteString(kvs[i])
		b.WriteString("=")
		b.WriteString(quote(kvs[i+1]))
	}
	t.raw(b.String())
}

// raw adds a line written as is.
func (t *text) raw(line string) { t.lines = append(t.lines, textLine{value: line}) }

func (t *text) writeTo(w io.Writer) error {
	var b strings.Builder
	for _, l := range t.lines {
		if l.key == "" {
			b.WriteString(l.value)
			b.WriteByte('\n')
			continue
		}
		line := l.key + ":"
		if l.value != "" {
			line += strings.Repeat(" ", t.width-len(line)+1) + l.value
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
