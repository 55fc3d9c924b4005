package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"meshgo.dev/mesh/internal/continuity"
)

// Log messages that operators and tests grep for.
const (
	logContinuity = "[mesh-rt continuity]"
	logStartup    = "[mesh-rt startup]"
)

// warnTransitions are logged at warning level: something an operator may
// need to look at.
var warnTransitions = map[string]bool{
	continuity.TransitionRejected: true, continuity.TransitionCompletionRejected: true,
	continuity.TransitionOwnerLost: true, continuity.TransitionDegraded: true,
	continuity.TransitionReplicationSourceLost: true, continuity.TransitionStaleEpochRejected: true,
	continuity.TransitionAutomaticPromotionRejected: true, continuity.TransitionAutomaticRecoveryRejected: true,
	continuity.TransitionPrepareFailed: true, continuity.TransitionQuarantined: true,
	transitionStartupRejected: true, transitionStartupConvergenceTimeout: true, transitionStartupFenced: true,
	"handshake_rejected": true,
}

// logEntry writes one line per diagnostic entry:
// [mesh-rt continuity] transition=<t> request_key=<k> <metadata...> <fields...>
func (n *Node) logEntry(e continuity.Entry) {
	n.met.transition(e)
	msg := logContinuity
	if strings.HasPrefix(e.Transition, "startup_") {
		msg = logStartup
	}
	level := slog.LevelInfo
	switch {
	case warnTransitions[e.Transition]:
		level = slog.LevelWarn
	case e.Kind == continuity.KindRoute && continuity.Routine(e.Transition):
		// One line per request per step would drown everything else at
		// production request rates.
		level = slog.LevelDebug
	}
	if !n.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, 16)
	seen := map[string]bool{}
	add := func(k, v string) {
		if v == "" || seen[k] {
			return
		}
		seen[k] = true
		attrs = append(attrs, slog.String(k, v))
	}
	add("transition", e.Transition)
	add("request_key", e.RequestKey)
	for _, kv := range e.Metadata {
		add(kv.Key, kv.Value)
	}
	add("attempt_id", e.AttemptID)
	add("owner_node", e.OwnerNode)
	add("replica_node", e.ReplicaNode)
	add("execution_node", e.ExecutionNode)
	add("cluster_role", string(e.ClusterRole))
	add("promotion_epoch", strconv.FormatUint(e.PromotionEpoch, 10))
	add("replication_health", string(e.ReplicationHealth))
	add("replica_status", string(e.ReplicaStatus))
	add("reason", e.Reason)
	n.log.LogAttrs(context.Background(), level, msg, attrs...)
}

// Log formats of MESH_LOG_FORMAT.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// defaultLogger is the logger of a node configured without one. The text
// format is slog.Default() itself, so its lines stay exactly those of the
// process's default logger ("[mesh-rt continuity] transition=... key=value").
// The JSON format writes one object per line to standard error, at the
// default logger's level (info): msg is the text line's message, every line
// has a transition (transitionHandler) and every attribute keeps its key,
// the key the operator output uses for the same field (request_key,
// attempt_id, cluster_role, promotion_epoch, ...).
func defaultLogger(format string) *slog.Logger { return formatLogger(format, os.Stderr) }

// formatLogger is defaultLogger writing JSON to w.
func formatLogger(format string, w io.Writer) *slog.Logger {
	if format == LogFormatJSON {
		return slog.New(transitionHandler{slog.NewJSONHandler(w, nil)})
	}
	return slog.Default()
}

// transitionHandler gives every JSON line a transition: the lines about a
// diagnostic entry carry the entry's own, and every other runtime line gets
// the event it reports, named from its message (lineTransition), so a log
// pipeline can select and count lines by one key.
type transitionHandler struct{ slog.Handler }

func (h transitionHandler) Handle(ctx context.Context, r slog.Record) error {
	has := false
	r.Attrs(func(a slog.Attr) bool {
		has = a.Key == "transition"
		return !has
	})
	if !has {
		r = r.Clone()
		r.AddAttrs(slog.String("transition", lineTransition(r.Message)))
	}
	return h.Handler.Handle(ctx, r)
}

func (h transitionHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return transitionHandler{h.Handler.WithAttrs(attrs)}
}

func (h transitionHandler) WithGroup(name string) slog.Handler {
	return transitionHandler{h.Handler.WithGroup(name)}
}

// lineTransition names the event of a runtime line from its message
// "[mesh-rt <subsystem>] <text>": the text up to a colon or semicolon in
// snake case ("node down" is node_down), the value of a leading
// "transition=", or the subsystem when there is no text.
func lineTransition(msg string) string {
	rest := msg
	subsystem := ""
	if strings.HasPrefix(msg, "[mesh-rt ") {
		if end := strings.IndexByte(msg, ']'); end > 0 {
			subsystem, rest = msg[len("[mesh-rt "):end], msg[end+1:]
		}
	}
	rest = strings.TrimSpace(rest)
	if v, ok := strings.CutPrefix(rest, "transition="); ok {
		rest = v
	}
	if i := strings.IndexAny(rest, ":;"); i >= 0 {
		rest = rest[:i]
	}
	rest = strings.Join(strings.Fields(rest), "_")
	if rest == "" {
		return subsystem
	}
	return rest
}
