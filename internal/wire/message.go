package wire

import (
	"fmt"

	"meshgo.dev/mesh/internal/continuity"
)

// Message tags: the first byte of every session frame. Tags are part of the
// format; add new ones, never reuse or renumber. 0x00 is never a message.
//
//	Tag   Message        Layout after the tag
//	0x01  Ping           nonce u64, authority
//	0x02  Pong           nonce u64, authority
//	0x03  PeerList       count u32, count × string
//	0x10  Sync           authority, attempt watermark u64, count u32, count × record,
//	                     incarnation u64 peer_incarnation u64
//	0x11  Upsert         authority, attempt watermark u64, record
//	0x12  Prepare        id u64, authority, record
//	0x13  PrepareAck     id u64, ok bool, reason string, authority
//	0x14  Held           id u64, request key, attempt u64
//	0x15  HeldAck        id u64, ok bool, reason string, authority
//	0x16  SyncPart       as Sync
//	0x20  Dispatch       id u64, runtime name, request key, attempt u64, epoch u64
//	0x21  DispatchAck    id u64, ok bool, reason string
//	0x30  RouteRequest   id u64, runtime name, request key, attempt u64, epoch u64,
//	                     deadline i64, method, uri, host, remote addr,
//	                     header fields, path values, body
//	0x31  RouteResponse  id u64, ok bool, reason string, status i32, header fields, body
//	0x32  RouteCancel    id u64
//	0x40  OperatorQuery  kind u8, request key, has limit bool, limit u32
//	0x41  OperatorReply  ok bool, error string, body
//	0x42  OperatorReplyPart  body
//	0x50  Handover       id u64, step u8, epoch u64, authority
//	0x51  HandoverAck    id u64, ok bool, reason string, authority,
//	                     attempt watermark u64, pending u64
//
// authority is role u8 (0 unset, 1 primary, 2 standby) then epoch u64; strings
// and bodies are u32 length-prefixed; header fields are count u32 then
// count × (name, value); a record is as written by EncodeRecord.
const (
	tagPing          = 0x01
	tagPong          = 0x02
	tagPeerList      = 0x03
	tagSync          = 0x10
	tagUpsert        = 0x11
	tagPrepare       = 0x12
	tagPrepareAck    = 0x13
	tagHeld          = 0x14
	tagHeldAck       = 0x15
	tagSyncPart      = 0x16
	tagDispatch      = 0x20
	tagDispatchAck   = 0x21
	tagRouteRequest  = 0x30
	tagRouteResponse = 0x31
	tagRouteCancel   = 0x32
	tagOperatorQuery = 0x40
	tagOperatorReply = 0x41
	tagOperatorPart  = 0x42
	tagHandover      = 0x50
	tagHandoverAck   = 0x51
)

// Message is one session message. Only the types in this package implement
// it; Decode returns them as values (Ping, not *Ping).
type Message interface {
	// appendTo appends the tag and the encoded fields to dst.
	appendTo(dst []byte) []byte
}

// Encode returns the encoding of m: its tag byte followed by its fields.
func Encode(m Message) []byte { return m.appendTo(nil) }

// AppendEncode appends the encoding of m to dst and returns the extended
// slice, so a caller reusing dst encodes without allocating.
func AppendEncode(dst []byte, m Message) []byte { return m.appendTo(dst) }

// Decode parses one message. It fails with ErrUnknownMessage for a tag this
// version does not define, ErrTruncated, ErrInvalidValue or ErrTrailingBytes
// for malformed input. The result never aliases b.
func Decode(b []byte) (Message, error) {
	var d Decoder
	return d.decodeMessage(b, nil)
}

// MessageDecoder decodes successive messages of one stream, sharing
// repeated names between them and reusing its own state. It is not safe for
// concurrent use; its zero value is ready.
type MessageDecoder struct {
	d     Decoder
	names Interner
}

// Decode is the package Decode, for one more message of the stream.
func (md *MessageDecoder) Decode(b []byte) (Message, error) { return md.d.decodeMessage(b, &md.names) }

// DecodeUpsert decodes b into *m when b is an Upsert and reports whether it
// was one; any other message is left to Decode. The hot path of replication
// decodes upserts without boxing a Record-sized value in an interface.
func (md *MessageDecoder) DecodeUpsert(b []byte, m *Upsert) (bool, error) {
	if len(b) == 0 || b[0] != tagUpsert {
		return false, nil
	}
	md.d = Decoder{b: b, off: 1, in: &md.names}
	m.Authority, m.AttemptWatermark = decodeAuthority(&md.d), md.d.U64()
	m.Record = DecodeRecord(&md.d)
	err := md.d.Finish()
	md.d.b = nil
	if err != nil {
		return true, fmt.Errorf("decode upsert: %w", err)
	}
	return true, nil
}

// DecodePrepare is DecodeUpsert for a Prepare: the replica's hot path
// decodes each mirrored record into *m, reused, rather than boxing it.
func (md *MessageDecoder) DecodePrepare(b []byte, m *Prepare) (bool, error) {
	if len(b) == 0 || b[0] != tagPrepare {
		return false, nil
	}
	md.d = Decoder{b: b, off: 1, in: &md.names}
	m.ID, m.Authority = md.d.U64(), decodeAuthority(&md.d)
	m.Record = DecodeRecord(&md.d)
	err := md.d.Finish()
	md.d.b = nil
	if err != nil {
		return true, fmt.Errorf("decode prepare: %w", err)
	}
	return true, nil
}

// DecodeAck is DecodeUpsert for the answers an owner waits for on each
// count-2 request, a PrepareAck or a HeldAck: it decodes either into *m,
// reused (a HeldAck's fields are a PrepareAck's, so wire.HeldAck(*m)
// converts it), and reports which one b was. An OK answer allocates
// nothing.
func (md *MessageDecoder) DecodeAck(b []byte, m *PrepareAck) (isPrepareAck, isHeldAck bool, err error) {
	if len(b) == 0 || (b[0] != tagPrepareAck && b[0] != tagHeldAck) {
		return false, false, nil
	}
	md.d = Decoder{b: b, off: 1, in: &md.names}
	m.ID, m.OK, m.Reason = md.d.U64(), md.d.Bool(), md.d.String()
	m.Authority = decodeAuthority(&md.d)
	err = md.d.Finish()
	md.d.b = nil
	if err != nil {
		err = fmt.Errorf("decode %s: %w", decoders[b[0]].name, err)
	}
	return b[0] == tagPrepareAck, b[0] == tagHeldAck, err
}

func (d *Decoder) decodeMessage(b []byte, in *Interner) (Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("decode message: %w: empty message", ErrTruncated)
	}
	dec := decoders[b[0]]
	if dec.decode == nil {
		return nil, fmt.Errorf("decode message: %w 0x%02x", ErrUnknownMessage, b[0])
	}
	*d = Decoder{b: b, off: 1, in: in}
	m := dec.decode(d)
	err := d.Finish()
	d.b = nil // do not hold on to the frame
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", dec.name, err)
	}
	return m, nil
}

// decoders is indexed by tag; entries without a decode func are unknown tags.
var decoders = [256]struct {
	name   string
	decode func(*Decoder) Message
}{
	tagPing:          {"ping", decodePing},
	tagPong:          {"pong", decodePong},
	tagPeerList:      {"peer list", decodePeerList},
	tagSync:          {"sync", decodeSync},
	tagUpsert:        {"upsert", decodeUpsert},
	tagPrepare:       {"prepare", decodePrepare},
	tagPrepareAck:    {"prepare ack", decodePrepareAck},
	tagHeld:          {"held", decodeHeld},
	tagHeldAck:       {"held ack", decodeHeldAck},
	tagSyncPart:      {"sync part", decodeSyncPart},
	tagDispatch:      {"dispatch", decodeDispatch},
	tagDispatchAck:   {"dispatch ack", decodeDispatchAck},
	tagRouteRequest:  {"route request", decodeRouteRequest},
	tagRouteResponse: {"route response", decodeRouteResponse},
	tagRouteCancel:   {"route cancel", decodeRouteCancel},
	tagOperatorQuery: {"operator query", decodeOperatorQuery},
	tagOperatorReply: {"operator reply", decodeOperatorReply},
	tagOperatorPart:  {"operator reply part", decodeOperatorReplyPart},
	tagHandover:      {"handover", decodeHandover},
	tagHandoverAck:   {"handover ack", decodeHandoverAck},
}

// Authority is the sender's role and promotion epoch, carried on messages the
// receiver must fence against a stale primary.
type Authority struct {
	Role  continuity.Role
	Epoch uint64
}

func (a Authority) encode(e *Encoder) {
	encodeEnum(e, roleCodes, a.Role)
	e.U64(a.Epoch)
}

func decodeAuthority(d *Decoder) Authority {
	return Authority{Role: decodeEnum(d, roleCodes, "role"), Epoch: d.U64()}
}

// Ping is a heartbeat; the peer answers with a Pong carrying the same Nonce.
type Ping struct {
	Nonce     uint64
	Authority Authority
}

func (m Ping) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagPing)}
	e.U64(m.Nonce)
	m.Authority.encode(&e)
	return e.buf
}

func decodePing(d *Decoder) Message {
	return Ping{Nonce: d.U64(), Authority: decodeAuthority(d)}
}

// Pong answers a Ping, echoing its Nonce.
type Pong struct {
	Nonce     uint64
	Authority Authority
}

func (m Pong) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagPong)}
	e.U64(m.Nonce)
	m.Authority.encode(&e)
	return e.buf
}

func decodePong(d *Decoder) Message {
	return Pong{Nonce: d.U64(), Authority: decodeAuthority(d)}
}

// PeerList names the cluster members the sender knows, so the receiver can
// dial the ones it is missing.
type PeerList struct {
	Names []string
}

func (m PeerList) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagPeerList)}
	encodeStrings(&e, m.Names)
	return e.buf
}

func decodePeerList(d *Decoder) Message {
	return PeerList{Names: decodeStrings(d)}
}

// Sync is the sender's full continuity snapshot, sent once when a session
// comes up. AttemptWatermark is the highest attempt number the sender has
// issued, so the receiver never reissues one. Incarnation identifies the
// sender's process: it is drawn at random when the node starts, so a peer
// that hears a new one under a known name knows the process it knew is gone
// with everything it was running. PeerIncarnation is the incarnation of
// the receiver the sender knew from its previous session with it (0: none):
// when it is not the receiver's own, the sender outlived the receiver's
// previous process and recovers what that process held, so the receiver
// must not take that work up again itself.
type Sync struct {
	Authority        Authority
	AttemptWatermark uint64
	Records          []continuity.Record
	Incarnation      uint64
	PeerIncarnation  uint64
}

func (m Sync) appendTo(dst []byte) []byte { return m.appendBody(append(dst, tagSync)) }

// appendBody appends the fields of a Sync or SyncPart after its tag.
func (m Sync) appendBody(dst []byte) []byte {
	e := Encoder{buf: dst}
	m.Authority.encode(&e)
	e.U64(m.AttemptWatermark)
	e.Count(len(m.Records))
	for i := range m.Records {
		appendRecord(&e, &m.Records[i])
	}
	e.U64(m.Incarnation)
	e.U64(m.PeerIncarnation)
	return e.buf
}

// SyncPart is a leading part of a snapshot too large for one frame: the
// sender splits its snapshot into SyncParts followed by one Sync, and the
// receiver counts the peer as synced only once that Sync is applied. Its
// fields are a Sync's, and every part carries the same authority,
// watermark and incarnations. Added in handshake version 4.
type SyncPart Sync

func (m SyncPart) appendTo(dst []byte) []byte { return Sync(m).appendBody(append(dst, tagSyncPart)) }

func decodeSyncPart(d *Decoder) Message { return SyncPart(decodeSync(d).(Sync)) }

func decodeSync(d *Decoder) Message {
	m := Sync{Authority: decodeAuthority(d), AttemptWatermark: d.U64()}
	if n := d.Count(minRecordSize); n > 0 {
		m.Records = make([]continuity.Record, n)
		for i := range m.Records {
			m.Records[i] = DecodeRecord(d)
		}
	}
	m.Incarnation = d.U64()
	m.PeerIncarnation = d.U64()
	return m
}

// Upsert replicates one record change to the peer.
type Upsert struct {
	Authority        Authority
	AttemptWatermark uint64
	Record           continuity.Record
}

// AppendUpsert is AppendEncode for an Upsert, without boxing it in a Message.
func AppendUpsert(dst []byte, m *Upsert) []byte {
	return AppendUpsertOf(dst, m.Authority, m.AttemptWatermark, &m.Record)
}

// AppendUpsertOf is AppendUpsert for the Upsert of rec with authority a and
// attempt watermark w, without building the Upsert (a copy of the record).
func AppendUpsertOf(dst []byte, a Authority, w uint64, rec *continuity.Record) []byte {
	e := Encoder{buf: append(dst, tagUpsert)}
	a.encode(&e)
	e.U64(w)
	appendRecord(&e, rec)
	return e.buf
}

func (m Upsert) appendTo(dst []byte) []byte { return AppendUpsert(dst, &m) }

func decodeUpsert(d *Decoder) Message {
	return Upsert{Authority: decodeAuthority(d), AttemptWatermark: d.U64(), Record: DecodeRecord(d)}
}

// Prepare asks the replica to mirror Record before the owner runs it; the
// replica answers with a PrepareAck carrying the same ID.
type Prepare struct {
	ID        uint64
	Authority Authority
	Record    continuity.Record
}

func (m Prepare) appendTo(dst []byte) []byte {
	return AppendPrepareOf(dst, m.ID, m.Authority, &m.Record)
}

// AppendPrepareOf is AppendEncode for the Prepare of rec with id and
// authority a, without building the Prepare or boxing it in a Message (a
// copy of the record on the heap).
func AppendPrepareOf(dst []byte, id uint64, a Authority, rec *continuity.Record) []byte {
	e := Encoder{buf: append(dst, tagPrepare)}
	e.U64(id)
	a.encode(&e)
	appendRecord(&e, rec)
	return e.buf
}

func decodePrepare(d *Decoder) Message {
	return Prepare{ID: d.U64(), Authority: decodeAuthority(d), Record: DecodeRecord(d)}
}

// PrepareAck answers the Prepare with the same ID. When OK is false, Reason
// says why (a continuity.Reason).
type PrepareAck struct {
	ID        uint64
	OK        bool
	Reason    string
	Authority Authority
}

func (m PrepareAck) appendTo(dst []byte) []byte { return AppendPrepareAck(dst, &m) }

// AppendPrepareAck is AppendEncode for *m, without boxing it in a Message.
func AppendPrepareAck(dst []byte, m *PrepareAck) []byte {
	e := Encoder{buf: append(dst, tagPrepareAck)}
	e.U64(m.ID)
	e.Bool(m.OK)
	e.String(m.Reason)
	m.Authority.encode(&e)
	return e.buf
}

func decodePrepareAck(d *Decoder) Message {
	return PrepareAck{ID: d.U64(), OK: d.Bool(), Reason: d.String(), Authority: decodeAuthority(d)}
}

// Held asks the replica whether it holds attempt Attempt of RequestKey
// completed (durably, with a log store). The owner sends it after the
// completed record's Upsert, on the same link, so the replica has applied
// that Upsert when it reads Held; it answers with a HeldAck carrying the
// same ID. Added in handshake version 3.
type Held struct {
	ID         uint64
	RequestKey string
	Attempt    uint64
}

func (m Held) appendTo(dst []byte) []byte { return AppendHeld(dst, m.ID, m.RequestKey, m.Attempt) }

// AppendHeld is AppendEncode for the Held of id, key and attempt, without
// boxing it in a Message.
func AppendHeld(dst []byte, id uint64, key string, attempt uint64) []byte {
	e := Encoder{buf: append(dst, tagHeld)}
	e.U64(id)
	e.String(key)
	e.U64(attempt)
	return e.buf
}

// DecodeHeld is DecodeUpsert for a Held. A Held follows the Upsert of
// the completion it asks about, so its key is usually known already: when
// it equals known, m.RequestKey is known itself and nothing is allocated.
func (md *MessageDecoder) DecodeHeld(b []byte, m *Held, known string) (bool, error) {
	if len(b) == 0 || b[0] != tagHeld {
		return false, nil
	}
	md.d = Decoder{b: b, off: 1, in: &md.names}
	m.ID, m.RequestKey, m.Attempt = md.d.U64(), md.d.StringKnown(known), md.d.U64()
	err := md.d.Finish()
	md.d.b = nil
	if err != nil {
		return true, fmt.Errorf("decode held: %w", err)
	}
	return true, nil
}

func decodeHeld(d *Decoder) Message {
	return Held{ID: d.U64(), RequestKey: d.String(), Attempt: d.U64()}
}

// HeldAck answers the Held with the same ID. OK means the replica holds the
// completed attempt; otherwise Reason says why not (a continuity.Reason).
type HeldAck struct {
	ID        uint64
	OK        bool
	Reason    string
	Authority Authority
}

func (m HeldAck) appendTo(dst []byte) []byte { return AppendHeldAck(dst, &m) }

// AppendHeldAck is AppendEncode for *m, without boxing it in a Message.
func AppendHeldAck(dst []byte, m *HeldAck) []byte {
	e := Encoder{buf: append(dst, tagHeldAck)}
	e.U64(m.ID)
	e.Bool(m.OK)
	e.String(m.Reason)
	m.Authority.encode(&e)
	return e.buf
}

func decodeHeldAck(d *Decoder) Message {
	return HeldAck{ID: d.U64(), OK: d.Bool(), Reason: d.String(), Authority: decodeAuthority(d)}
}

// Dispatch asks the peer to run attempt Attempt of the declared work
// RuntimeName under RequestKey, on behalf of a primary at Epoch. The peer
// answers with a DispatchAck carrying the same ID.
type Dispatch struct {
	ID          uint64
	RuntimeName string
	RequestKey  string
	Attempt     uint64
	Epoch       uint64
}

func (m Dispatch) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagDispatch)}
	e.U64(m.ID)
	e.String(m.RuntimeName)
	e.String(m.RequestKey)
	e.U64(m.Attempt)
	e.U64(m.Epoch)
	return e.buf
}

func decodeDispatch(d *Decoder) Message {
	return Dispatch{ID: d.U64(), RuntimeName: d.String(), RequestKey: d.String(), Attempt: d.U64(), Epoch: d.U64()}
}

// DispatchAck answers the Dispatch with the same ID. When OK is false, Reason
// says why (a continuity.Reason).
type DispatchAck struct {
	ID     uint64
	OK     bool
	Reason string
}

func (m DispatchAck) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagDispatchAck)}
	e.U64(m.ID)
	e.Bool(m.OK)
	e.String(m.Reason)
	return e.buf
}

func decodeDispatchAck(d *Decoder) Message {
	return DispatchAck{ID: d.U64(), OK: d.Bool(), Reason: d.String()}
}

// HeaderField is one HTTP header line or one path value. Order and repeated
// names are preserved.
type HeaderField struct {
	Name  string
	Value string
}

// minHeaderFieldSize is the encoded size of a field with empty name and value.
const minHeaderFieldSize = 2 * 4

func encodeFields(e *Encoder, fields []HeaderField) {
	e.Count(len(fields))
	for _, f := range fields {
		e.String(f.Name)
		e.String(f.Value)
	}
}

func decodeFields(d *Decoder) []HeaderField {
	n := d.Count(minHeaderFieldSize)
	if n == 0 {
		return nil
	}
	fields := make([]HeaderField, n)
	for i := range fields {
		fields[i] = HeaderField{Name: d.String(), Value: d.String()}
	}
	return fields
}

func encodeStrings(e *Encoder, ss []string) {
	e.Count(len(ss))
	for _, s := range ss {
		e.String(s)
	}
}

func decodeStrings(d *Decoder) []string {
	n := d.Count(4)
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.String()
	}
	return ss
}

// RouteRequest forwards one clustered HTTP request to the node that owns it.
// DeadlineUnixNano is when the ingress gives up (0: no deadline). The owner
// answers with a RouteResponse carrying the same ID; the ingress may send a
// RouteCancel first.
type RouteRequest struct {
	ID               uint64
	RuntimeName      string
	RequestKey       string
	Attempt          uint64
	Epoch            uint64
	DeadlineUnixNano int64
	Method           string
	URI              string
	Host             string
	RemoteAddr       string
	Header           []HeaderField
	PathValues       []HeaderField
	Body             []byte
}

func (m RouteRequest) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagRouteRequest)}
	e.U64(m.ID)
	e.String(m.RuntimeName)
	e.String(m.RequestKey)
	e.U64(m.Attempt)
	e.U64(m.Epoch)
	e.I64(m.DeadlineUnixNano)
	e.String(m.Method)
	e.String(m.URI)
	e.String(m.Host)
	e.String(m.RemoteAddr)
	encodeFields(&e, m.Header)
	encodeFields(&e, m.PathValues)
	e.Blob(m.Body)
	return e.buf
}

func decodeRouteRequest(d *Decoder) Message {
	return RouteRequest{
		ID:               d.U64(),
		RuntimeName:      d.String(),
		RequestKey:       d.String(),
		Attempt:          d.U64(),
		Epoch:            d.U64(),
		DeadlineUnixNano: d.I64(),
		Method:           d.String(),
		URI:              d.String(),
		Host:             d.String(),
		RemoteAddr:       d.String(),
		Header:           decodeFields(d),
		PathValues:       decodeFields(d),
		Body:             d.Blob(),
	}
}

// RouteResponse answers the RouteRequest with the same ID. When OK is false
// the handler did not produce a response and Reason says why; otherwise
// Status, Header and Body are the HTTP response.
type RouteResponse struct {
	ID     uint64
	OK     bool
	Reason string
	Status int32
	Header []HeaderField
	Body   []byte
}

func (m RouteResponse) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagRouteResponse)}
	e.U64(m.ID)
	e.Bool(m.OK)
	e.String(m.Reason)
	e.I32(m.Status)
	encodeFields(&e, m.Header)
	e.Blob(m.Body)
	return e.buf
}

func decodeRouteResponse(d *Decoder) Message {
	return RouteResponse{
		ID:     d.U64(),
		OK:     d.Bool(),
		Reason: d.String(),
		Status: d.I32(),
		Header: decodeFields(d),
		Body:   d.Blob(),
	}
}

// RouteCancel tells the owner that the ingress gave up on RouteRequest ID.
type RouteCancel struct {
	ID uint64
}

func (m RouteCancel) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagRouteCancel)}
	e.U64(m.ID)
	return e.buf
}

func decodeRouteCancel(d *Decoder) Message {
	return RouteCancel{ID: d.U64()}
}

// OperatorQuery is the single request of an operator connection. Kind selects
// the query (its values belong to the operator package); RequestKey and Limit
// narrow it, Limit only when HasLimit is set.
type OperatorQuery struct {
	Kind       uint8
	RequestKey string
	HasLimit   bool
	Limit      uint32
}

func (m OperatorQuery) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagOperatorQuery)}
	e.U8(m.Kind)
	e.String(m.RequestKey)
	e.Bool(m.HasLimit)
	e.U32(m.Limit)
	return e.buf
}

func decodeOperatorQuery(d *Decoder) Message {
	return OperatorQuery{Kind: d.U8(), RequestKey: d.String(), HasLimit: d.Bool(), Limit: d.U32()}
}

// OperatorReply answers an OperatorQuery. Body is a JSON document when OK;
// otherwise Error says what went wrong.
type OperatorReply struct {
	OK    bool
	Error string
	Body  []byte
}

func (m OperatorReply) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagOperatorReply)}
	e.Bool(m.OK)
	e.String(m.Error)
	e.Blob(m.Body)
	return e.buf
}

func decodeOperatorReply(d *Decoder) Message {
	return OperatorReply{OK: d.Bool(), Error: d.String(), Body: d.Blob()}
}

// OperatorReplyPart carries the leading part of an OK reply's body that is
// too large for one frame. A node sends such a body as parts, in order, and
// ends with an OperatorReply holding the rest; the body is their
// concatenation. A reply that fits one frame is a single OperatorReply.
type OperatorReplyPart struct {
	Body []byte
}

func (m OperatorReplyPart) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagOperatorPart)}
	e.Blob(m.Body)
	return e.buf
}

func decodeOperatorReplyPart(d *Decoder) Message {
	return OperatorReplyPart{Body: d.Blob()}
}

// Handover steps of a planned switchover, sent by the primary to the
// standby it hands its role to.
const (
	// HandoverCheck asks the standby whether it can take the role over: it
	// answers after applying everything the primary sent before, so an OK
	// means it holds every record the primary replicated.
	HandoverCheck uint8 = 1
	// HandoverCommit tells the standby to take the role over above Epoch
	// (the primary's epoch; a lease arbiter decides the new one).
	HandoverCommit uint8 = 2
	// HandoverAbort tells the standby the hand-over will not happen.
	HandoverAbort uint8 = 3
	// HandoverBarrier asks only for an answer: the peer gives it after
	// applying every frame sent before, so a node shutting down knows its
	// last records arrived before it closes the link.
	HandoverBarrier uint8 = 4
)

// Handover is one step of a planned switchover (HandoverCheck, Commit or
// Abort). The standby answers with a HandoverAck carrying the same ID.
type Handover struct {
	ID        uint64
	Step      uint8
	Epoch     uint64
	Authority Authority
}

func (m Handover) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagHandover)}
	e.U64(m.ID)
	e.U8(m.Step)
	e.U64(m.Epoch)
	m.Authority.encode(&e)
	return e.buf
}

func decodeHandover(d *Decoder) Message {
	return Handover{ID: d.U64(), Step: d.U8(), Epoch: d.U64(), Authority: decodeAuthority(d)}
}

// HandoverAck answers the Handover with the same ID. When OK is false,
// Reason says why. Authority is the standby's after the step (the new
// primary's after a commit); AttemptWatermark and Pending are its attempt
// watermark and its number of pending records.
type HandoverAck struct {
	ID               uint64
	OK               bool
	Reason           string
	Authority        Authority
	AttemptWatermark uint64
	Pending          uint64
}

func (m HandoverAck) appendTo(dst []byte) []byte {
	e := Encoder{buf: append(dst, tagHandoverAck)}
	e.U64(m.ID)
	e.Bool(m.OK)
	e.String(m.Reason)
	m.Authority.encode(&e)
	e.U64(m.AttemptWatermark)
	e.U64(m.Pending)
	return e.buf
}

func decodeHandoverAck(d *Decoder) Message {
	return HandoverAck{ID: d.U64(), OK: d.Bool(), Reason: d.String(), Authority: decodeAuthority(d),
		AttemptWatermark: d.U64(), Pending: d.U64()}
}
