package wire

import (
	"math"
	"strings"
	"time"

	"meshgo.dev/mesh/internal/continuity"
)

// fullRecord sets every field of continuity.Record to a non-zero value;
// TestRecordSampleCoversEveryField keeps it that way when Record grows.
func fullRecord() continuity.Record {
	return continuity.Record{
		RequestKey:       continuity.RouteKeyPrefix + "orders/42",
		PayloadHash:      "sha256:9f86d081884c7d659a2feaa0c55ad015",
		Attempt:          7,
		Phase:            continuity.PhaseCompleted,
		Result:           continuity.ResultSucceeded,
		IngressNode:      "standby@[::1]:4371",
		OwnerNode:        "primary@127.0.0.1:4370",
		ReplicaNode:      "standby@[::1]:4371",
		ReplicationCount: 2,
		ReplicaStatus:    continuity.ReplicaDegradedContinuing,
		Role:             continuity.RoleStandby,
		Epoch:            3,
		Health:           continuity.HealthDegraded,
		ExecutionNode:    "primary@127.0.0.1:4370",
		RoutedRemotely:   true,
		FellBackLocally:  true,
		Error:            string(continuity.ReasonReplicaPrepareTimeout),
		RuntimeName:      "orders.Create",
		Kind:             continuity.KindRoute,
		SubmittedAt:      time.Date(2025, 11, 26, 20, 10, 0, 123456789, time.UTC),
		CompletedAt:      time.Date(2025, 11, 26, 20, 10, 1, 5, time.UTC),
		Response:         []byte("HTTP/1.1 201 Created\r\n\r\n{\"id\":42}"),
		Refused:          true, // not a valid combination with completed; the codec does not care
		Input:            []byte(`{"id":42}`),
		Output:           []byte(`{"settled":true}`),
	}
}

func pendingRecord() continuity.Record {
	return continuity.Record{
		RequestKey:       continuity.StartupKeyPrefix + "warm-cache",
		PayloadHash:      continuity.StartupHashPrefix + "0",
		Attempt:          1,
		Phase:            continuity.PhaseSubmitted,
		Result:           continuity.ResultPending,
		IngressNode:      "primary@host:1",
		OwnerNode:        "primary@host:1",
		ReplicationCount: 1,
		ReplicaStatus:    continuity.ReplicaUnassigned,
		Role:             continuity.RolePrimary,
		Epoch:            1,
		Health:           continuity.HealthLocalOnly,
		RuntimeName:      "cache.Warm",
		Kind:             continuity.KindWork,
		SubmittedAt:      time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.UTC),
	}
}

// extremeRecord pushes numbers to their limits and strings outside ASCII.
func extremeRecord() continuity.Record {
	r := fullRecord()
	r.RequestKey = "request::注文/📦/" + strings.Repeat("k", 300)
	r.PayloadHash = "\xff\xfe not utf-8 \x00"
	r.Attempt = math.MaxUint64
	r.ReplicationCount = math.MaxUint64
	r.Epoch = math.MaxUint64
	r.Phase = continuity.PhaseRejected
	r.Result = continuity.ResultRejected
	r.ReplicaStatus = continuity.ReplicaRejected
	r.Health = continuity.HealthUnavailable
	r.SubmittedAt = time.Unix(0, math.MinInt64).UTC()
	r.CompletedAt = time.Unix(0, math.MaxInt64).UTC()
	r.Response = make([]byte, 3000)
	return r
}

type sample struct {
	name string
	in   Message
	want Message // nil: same as in
}

func (s sample) expected() Message {
	if s.want != nil {
		return s.want
	}
	return s.in
}

func sampleMessages() []sample {
	primary := Authority{Role: continuity.RolePrimary, Epoch: 4}
	header := []HeaderField{
		{"Content-Type", "application/json"},
		{"X-Request-Id", "f3b2c1"},
		{"X-Request-Id", "repeated"},
		{"Accept-Language", "ja-JP, 日本語"},
	}
	return []sample{
		{name: "ping", in: Ping{Nonce: 0x0102030405060708, Authority: primary}},
		{name: "ping zero", in: Ping{}},
		{name: "pong max", in: Pong{Nonce: math.MaxUint64, Authority: Authority{Role: continuity.RoleStandby, Epoch: math.MaxUint64}}},
		{name: "peer list", in: PeerList{Names: []string{"primary@127.0.0.1:4370", "standby@[::1]:4371", "ノード@ホスト:1"}}},
		{name: "peer list empty", in: PeerList{Names: []string{}}, want: PeerList{}},
		{name: "peer list empty names", in: PeerList{Names: []string{"", ""}}},
		{name: "sync", in: Sync{Authority: primary, AttemptWatermark: 99,
			Records: []continuity.Record{fullRecord(), pendingRecord(), {}}, Incarnation: 0x1122334455667788, PeerIncarnation: 0x0102030405060708}},
		{name: "sync extreme", in: Sync{AttemptWatermark: math.MaxUint64, Records: []continuity.Record{extremeRecord()},
			Incarnation: math.MaxUint64, PeerIncarnation: math.MaxUint64}},
		{name: "sync empty", in: Sync{Records: []continuity.Record{}}, want: Sync{}},
		{name: "sync part", in: SyncPart{Authority: primary, AttemptWatermark: 99,
			Records: []continuity.Record{fullRecord(), pendingRecord()}, Incarnation: 0x1122334455667788, PeerIncarnation: 7}},
		{name: "sync part empty", in: SyncPart{Records: []continuity.Record{}}, want: SyncPart{}},
		{name: "upsert", in: Upsert{Authority: primary, AttemptWatermark: 8, Record: fullRecord()}},
		{name: "upsert empty response", in: Upsert{Record: func() continuity.Record {
			r := pendingRecord()
			r.Response = []byte{}
			return r
		}()}, want: Upsert{Record: pendingRecord()}},
		{name: "prepare", in: Prepare{ID: 12, Authority: primary, Record: pendingRecord()}},
		{name: "prepare ack ok", in: PrepareAck{ID: 12, OK: true, Authority: Authority{Role: continuity.RoleStandby, Epoch: 4}}},
		{name: "prepare ack refused", in: PrepareAck{ID: math.MaxUint64, Reason: string(continuity.ReasonStaleEpoch), Authority: primary}},
		{name: "held", in: Held{ID: 13, RequestKey: "http-route::transfer::caller-x::k1", Attempt: 3}},
		{name: "held extremes", in: Held{ID: math.MaxUint64, RequestKey: "🔑", Attempt: math.MaxUint64}},
		{name: "held ack ok", in: HeldAck{ID: 13, OK: true, Authority: Authority{Role: continuity.RoleStandby, Epoch: 4}}},
		{name: "held ack refused", in: HeldAck{ID: math.MaxUint64, Reason: string(continuity.ReasonAttemptMismatch), Authority: primary}},
		{name: "dispatch", in: Dispatch{ID: 5, RuntimeName: "orders.Create", RequestKey: "request::orders/42", Attempt: 2, Epoch: 4}},
		{name: "dispatch unicode", in: Dispatch{ID: math.MaxUint64, RuntimeName: "処理", RequestKey: "🔑", Attempt: math.MaxUint64, Epoch: math.MaxUint64}},
		{name: "dispatch ack", in: DispatchAck{ID: 5, OK: true}},
		{name: "dispatch ack refused", in: DispatchAck{ID: 6, Reason: string(continuity.ReasonHandlerNotRegistered)}},
		{name: "route request", in: realisticRouteRequest()},
		{name: "route request minimal", in: RouteRequest{Method: "GET", URI: "/"}},
		{name: "route request empty slices", in: RouteRequest{Header: []HeaderField{}, PathValues: []HeaderField{}, Body: []byte{}},
			want: RouteRequest{}},
		{name: "route request extremes", in: RouteRequest{ID: math.MaxUint64, Attempt: math.MaxUint64, Epoch: math.MaxUint64,
			DeadlineUnixNano: math.MinInt64, Method: "PROPFIND", URI: "/ü?q=" + strings.Repeat("x", 5000),
			Header: []HeaderField{{"", ""}}, PathValues: []HeaderField{{"id", "🆔"}}, Body: make([]byte, 8000)}},
		{name: "route response", in: RouteResponse{ID: 9, OK: true, Status: 201, Header: header, Body: []byte(`{"id":42}`)}},
		{name: "route response failed", in: RouteResponse{ID: 9, Reason: string(continuity.ReasonForwardTimeout), Status: math.MinInt32}},
		{name: "route response max status", in: RouteResponse{Status: math.MaxInt32, Body: []byte{0}}},
		{name: "route cancel", in: RouteCancel{ID: 9}},
		{name: "operator query", in: OperatorQuery{Kind: 2, RequestKey: "request::orders/42", HasLimit: true, Limit: math.MaxUint32}},
		{name: "operator query zero", in: OperatorQuery{}},
		{name: "operator reply", in: OperatorReply{OK: true, Body: []byte(`{"records":[],"node":"primary@h:1"}`)}},
		{name: "operator reply error", in: OperatorReply{Error: "unknown request key \"x\""}},
		{name: "operator reply part", in: OperatorReplyPart{Body: []byte(`{"records":[{"request_key":"a"},`)}},
		{name: "operator reply part empty", in: OperatorReplyPart{}},
		{name: "handover", in: Handover{ID: 3, Step: HandoverCommit, Epoch: 4, Authority: primary}},
		{name: "handover ack", in: HandoverAck{ID: math.MaxUint64, OK: true, Authority: Authority{Role: continuity.RoleStandby, Epoch: 4},
			AttemptWatermark: 77, Pending: 2}},
		{name: "handover ack refused", in: HandoverAck{ID: 4, Reason: "standby_not_caught_up"}},
	}
}

func realisticRouteRequest() RouteRequest {
	return RouteRequest{
		ID:               1 << 40,
		RuntimeName:      "orders.Create",
		RequestKey:       continuity.RouteKeyPrefix + "POST /orders idem=5a1f",
		Attempt:          3,
		Epoch:            4,
		DeadlineUnixNano: time.Date(2025, 11, 26, 20, 10, 5, 0, time.UTC).UnixNano(),
		Method:           "POST",
		URI:              "/orders/42/items?expand=true",
		Host:             "api.example.com",
		RemoteAddr:       "203.0.113.7:51234",
		Header: []HeaderField{
			{"Accept", "application/json"},
			{"Content-Type", "application/json"},
			{"Idempotency-Key", "5a1f"},
			{"User-Agent", "curl/8.5.0"},
			{"X-Forwarded-For", "198.51.100.1"},
			{"X-Forwarded-For", "203.0.113.7"},
			{"Accept-Encoding", "gzip"},
			{"Authorization", "Bearer abc.def.ghi"},
		},
		PathValues: []HeaderField{{"order", "42"}},
		Body:       []byte(strings.Repeat(`{"sku":"A-1","qty":2}`, 48)),
	}
}
