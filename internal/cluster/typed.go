package cluster

import (
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	"meshgo.dev/mesh/internal/continuity"
)

// Codec encodes the input and output of typed declared work. The default is
// encoding/json; a WorkCodec option chooses another. Marshal must be
// deterministic for equal values: the payload hash of a typed submission is
// the hash of its encoded input, so the same input must encode to the same
// bytes for a resubmission to be a duplicate.
type Codec interface {
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

type jsonCodec struct{}

func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// WorkCodec makes typed declared work encode its input and output with c
// instead of encoding/json. Registration then does not check that the types
// are JSON-encodable: c decides what it can encode.
func WorkCodec(c Codec) WorkOption {
	return WorkOption{func(o *workOptions) { o.codec = c }}
}

// typedWork is the typed form of a declared work function.
type typedWork struct {
	fn      reflect.Value
	in, out reflect.Type
	codec   Codec
}

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// newWorkHandler builds the handler of a declared work function of either
// shape, refusing any other.
func newWorkHandler(name string, fn any, o workOptions) (*handler, error) {
	v := reflect.ValueOf(fn)
	t := v.Type()
	shape := func() error {
		return fmt.Errorf("%s is neither func(context.Context) (R, error) nor func(context.Context, In) (Out, error)", t)
	}
	if t.NumOut() != 2 || t.Out(1) != errorType || t.IsVariadic() || t.NumIn() < 1 || t.NumIn() > 2 || t.In(0) != contextType {
		return nil, shape()
	}
	h := &handler{name: name, count: o.count, kind: continuity.KindWork, retry: o.retry}
	if t.NumIn() == 1 {
		h.run = func(ctx context.Context) error {
			out := v.Call([]reflect.Value{reflect.ValueOf(ctx)})
			err, _ := out[1].Interface().(error)
			return err
		}
		return h, nil
	}
	tw := &typedWork{fn: v, in: t.In(1), out: t.Out(0), codec: o.codec}
	if tw.codec == nil {
		tw.codec = jsonCodec{}
		if err := jsonEncodable(tw.in, map[reflect.Type]bool{}); err != nil {
			return nil, fmt.Errorf("input type %s cannot be encoded as JSON: %w", tw.in, err)
		}
		if err := jsonEncodable(tw.out, map[reflect.Type]bool{}); err != nil {
			return nil, fmt.Errorf("output type %s cannot be encoded as JSON: %w", tw.out, err)
		}
	}
	h.typed = tw
	return h, nil
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// jsonEncodable reports why values of t cannot round-trip through
// encoding/json, or nil when they can (interface values are checked by
// encoding/json at run time).
func jsonEncodable(t reflect.Type, seen map[reflect.Type]bool) error {
	if seen[t] {
		return nil
	}
	seen[t] = true
	if t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType) ||
		t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.Complex64, reflect.Complex128, reflect.UnsafePointer:
		return fmt.Errorf("%s is a %s", t, t.Kind())
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return jsonEncodable(t.Elem(), seen)
	case reflect.Map:
		k := t.Key()
		switch k.Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		default:
			if !k.Implements(textMarshalerType) && !reflect.PointerTo(k).Implements(textMarshalerType) {
				return fmt.Errorf("map key type %s is not a string, an integer or a TextMarshaler", k)
			}
		}
		return jsonEncodable(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			f := t.Field(i)
			if (!f.IsExported() && !f.Anonymous) || f.Tag.Get("json") == "-" {
				continue
			}
			if err := jsonEncodable(f.Type, seen); err != nil {
				return fmt.Errorf("field %s: %w", f.Name, err)
			}
		}
	}
	return nil
}

// call decodes input, runs the function and encodes its output. The output is
// never nil, so a completed typed record always carries one.
func (tw *typedWork) call(ctx context.Context, input []byte) ([]byte, error) {
	in := reflect.New(tw.in)
	if err := tw.codec.Unmarshal(input, in.Interface()); err != nil {
		return nil, finalError{fmt.Errorf("input_undecodable: %w", err)}
	}
	res := tw.fn.Call([]reflect.Value{reflect.ValueOf(ctx), in.Elem()})
	if err, _ := res[1].Interface().(error); err != nil {
		return nil, err
	}
	out, err := tw.codec.Marshal(res[0].Interface())
	if err != nil {
		return nil, finalError{fmt.Errorf("output_unencodable: %w", err)}
	}
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

// workPayloadHash is the payload hash of a typed submission: the hash of its
// encoded input.
func workPayloadHash(input []byte) string {
	sum := sha256.Sum256(input)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TypedDeclaration returns the declaration of the typed work function fn and
// checks that it was declared typed with input type in and output type out.
func TypedDeclaration(fn any) (Declaration, error) {
	name, err := runtimeName(fn)
	if err != nil {
		return Declaration{}, err
	}
	h, ok := defaultRegistry.get(name)
	if !ok || h.kind != continuity.KindWork {
		return Declaration{}, fmt.Errorf("%s: %w", name, ErrNotDeclared)
	}
	if h.typed == nil {
		return Declaration{}, fmt.Errorf("%s is not typed work", name)
	}
	return Declaration{RuntimeName: name, ReplicationCount: h.count}, nil
}

// typedHandler returns the typed handler of d on n.
func (n *Node) typedHandler(d Declaration) (*handler, error) {
	h, ok := n.handlers.get(d.RuntimeName)
	if !ok || h.kind != continuity.KindWork {
		return nil, fmt.Errorf("%s: %w", d.RuntimeName, ErrNotDeclared)
	}
	if h.typed == nil {
		return nil, fmt.Errorf("%s is not typed work", d.RuntimeName)
	}
	return h, nil
}

// SubmitTyped submits typed declared work d with input in under requestKey
// on n, like Node.Submit: the payload hash is the hash of the encoded input,
// so the same input again is a duplicate and another input a conflict. The
// encoded input is stored on the record, mirrored with it, and handed to the
// work on whichever node runs it (its owner, or the survivor after a
// failover). An encoded input larger than WorkMaxResultBytes is refused with
// input_too_large before anything is stored.
func SubmitTyped(ctx context.Context, n *Node, d Declaration, requestKey string, in any) (SubmitResult, error) {
	h, err := n.typedHandler(d)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, err)
	}
	if v := reflect.ValueOf(in); !v.IsValid() || v.Type() != h.typed.in {
		return SubmitResult{}, fmt.Errorf("submit %s: input is %T, %s takes %s", requestKey, in, d.RuntimeName, h.typed.in)
	}
	input, err := h.typed.codec.Marshal(in)
	if err != nil {
		return SubmitResult{}, fmt.Errorf("submit %s: encode input: %w", requestKey, err)
	}
	return n.submitInput(ctx, h, requestKey, input)
}

// submitInput submits typed work with its encoded input.
func (n *Node) submitInput(ctx context.Context, h *handler, requestKey string, input []byte) (SubmitResult, error) {
	if input == nil {
		input = []byte{}
	}
	if int64(len(input)) > n.cfg.WorkMaxResultBytes {
		return SubmitResult{}, fmt.Errorf("submit %s: %w", requestKey, &continuity.Error{Reason: continuity.ReasonInputTooLarge})
	}
	return n.submitWork(ctx, h, requestKey, workPayloadHash(input), input)
}

// WorkError is the error a typed work handle's Result returns when the work
// was rejected: it returned an error (handler_error:<text>), panicked, its
// output was too large (result_too_large), or its submission was refused.
type WorkError struct {
	RequestKey string
	AttemptID  string
	Reason     string // the record's error text
}

func (e *WorkError) Error() string {
	return fmt.Sprintf("work %s (%s) rejected: %s", e.RequestKey, e.AttemptID, e.Reason)
}

// A Claim is a typed-work handle's hold on the outcome of its record on its
// node, taken before the submission or lookup that made the handle
// (claimTyped). Every ended version of a work record passes through the
// node's awaitWake (this node's transitions in replicate, the peer's in
// merge), which hands it to each claim on the key: so a claim on a record
// that was pending when the handle was made is handed the version that
// ended it, whether or not the node still retains the record when Result is
// called (a caller that submits, is descheduled, and asks after the node
// completed more records than it retains). Await answers from that version,
// every time it is called.
type Claim struct {
	n *Node
	w *awaiter
}

// claimTyped registers a claim on the outcome of requestKey on n; call it
// before submitting or reading the record, so that the outcome cannot end
// unseen.
func claimTyped(n *Node, requestKey string) *Claim {
	return &Claim{n: n, w: n.awaiting.add(requestKey)}
}

// Release gives the claim up: a handle whose record had ended already, or
// that will never wait (its submission was refused or conflicted), or that
// is no longer reachable. A claim that was handed its outcome is no longer
// registered, so Release is then a no-op; it may be called more than once.
func (c *Claim) Release() { c.n.awaiting.remove(c.w) }

// Await waits until the record of the claim, typed work d, has ended on the
// claim's node and returns its encoded output, or a *WorkError when it was
// rejected. It returns ctx's error when ctx ends first; the claim stays, so
// a later Await waits on.
func (c *Claim) Await(ctx context.Context, d Declaration) ([]byte, error) {
	rec, ok := c.w.ended()
	if !ok {
		select {
		case <-c.w.done:
			rec, _ = c.w.ended()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return endedOutput(c.n, d, rec)
}

// endedOutput returns the encoded output of rec, an ended record of typed
// work d (handed to a claim, or at hand when the handle was made), or the
// error its outcome stands for: a *WorkError when it was rejected,
// request_key_conflict when the key belongs to another function's record.
// For count-2 work this node ran, it first makes sure the replica holds the
// outcome (see workOutputHeld).
func endedOutput(n *Node, d Declaration, rec *continuity.Record) ([]byte, error) {
	switch {
	case !continuity.SameKeySpace(rec, continuity.KindWork, d.RuntimeName):
		return nil, fmt.Errorf("await %s: %w", rec.RequestKey, &continuity.Error{Reason: continuity.ReasonRequestKeyConflict})
	case rec.Phase == continuity.PhaseCompleted:
		if rec.Output == nil {
			return nil, fmt.Errorf("await %s: the completed record carries no output", rec.RequestKey)
		}
		n.workOutputHeld(rec)
		return rec.Output, nil
	case rec.Phase == continuity.PhaseRejected:
		return nil, &WorkError{RequestKey: rec.RequestKey, AttemptID: rec.AttemptID(), Reason: rec.Error}
	}
	return nil, fmt.Errorf("await %s: the record has not ended (%s)", rec.RequestKey, rec.Phase)
}

// A TypedOutcome is where a typed-work handle reads its output: the record
// as its submission or lookup read it and, while that record was pending,
// the claim taken before the read, which is handed the version that ends it.
// SubmitClaimed and LookupClaimed make one; the root package's WorkHandle
// reads its output only through it, as the engine's tests do (but for the
// claim's own).
type TypedOutcome struct {
	n     *Node
	d     Declaration
	rec   Record
	claim *Claim // nil when rec had ended when read, or for a refusal or conflict
}

// SubmitClaimed submits like SubmitTyped, with a claim on requestKey taken
// before the submission, so the outcome is handed over when the record ends,
// however soon.
func SubmitClaimed(ctx context.Context, n *Node, d Declaration, requestKey string, in any) (SubmitResult, *TypedOutcome, error) {
	claim := claimTyped(n, requestKey)
	res, err := SubmitTyped(ctx, n, d, requestKey, in)
	if err != nil {
		claim.Release()
		return SubmitResult{}, nil, err
	}
	return res, newTypedOutcome(n, d, res.Outcome, res.Record, claim), nil
}

// LookupClaimed reads like LookupTyped, with a claim on requestKey taken
// before the read.
func LookupClaimed(n *Node, d Declaration, requestKey string) (Record, *TypedOutcome, error) {
	claim := claimTyped(n, requestKey)
	rec, err := LookupTyped(n, d, requestKey)
	if err != nil {
		claim.Release()
		return Record{}, nil, err
	}
	return rec, newTypedOutcome(n, d, OutcomeDuplicate, rec, claim), nil
}

// newTypedOutcome keeps claim only while it can still be handed an outcome
// the handle needs: not for a refusal, another submission's record, or an
// outcome already read, which Output answers from rec.
func newTypedOutcome(n *Node, d Declaration, outcome string, rec Record, claim *Claim) *TypedOutcome {
	o := &TypedOutcome{n: n, d: d, rec: rec}
	if outcome == OutcomeConflict || outcome == OutcomeRejected || rec.Phase.Terminal() {
		claim.Release()
		return o
	}
	o.claim = claim
	return o
}

// Output returns the encoded output, waiting for the record to end if it
// was pending when read; see endedOutput for the errors. Asked again, it
// answers from the same version.
func (o *TypedOutcome) Output(ctx context.Context) ([]byte, error) {
	if o.claim != nil {
		return o.claim.Await(ctx, o.d)
	}
	return endedOutput(o.n, o.d, &o.rec)
}

// Claim returns the claim o holds, nil if none: the handle that owns o
// releases it once it is unreachable.
func (o *TypedOutcome) Claim() *Claim { return o.claim }

// Release gives up the claim o holds, if any.
func (o *TypedOutcome) Release() {
	if o.claim != nil {
		o.claim.Release()
	}
}

// LookupTyped returns the stored record of typed work d under requestKey on
// n, refusing a key n does not know (request_key_not_found) or one that
// belongs to another handler (request_key_conflict).
func LookupTyped(n *Node, d Declaration, requestKey string) (Record, error) {
	if _, err := n.typedHandler(d); err != nil {
		return Record{}, fmt.Errorf("lookup %s: %w", requestKey, err)
	}
	rec, ok := n.reg.Get(requestKey)
	if !ok {
		return Record{}, fmt.Errorf("lookup %s: %w", requestKey, &continuity.Error{Reason: continuity.ReasonRequestKeyNotFound})
	}
	if !continuity.SameKeySpace(&rec, continuity.KindWork, d.RuntimeName) {
		return Record{}, fmt.Errorf("lookup %s: %w", requestKey, &continuity.Error{Reason: continuity.ReasonRequestKeyConflict})
	}
	return rec, nil
}

// CheckOutput checks that out is a pointer to the output type of typed work d.
func CheckOutput(n *Node, d Declaration, out any) error {
	h, err := n.typedHandler(d)
	if err != nil {
		return err
	}
	if t := reflect.TypeOf(out); t == nil || t.Kind() != reflect.Pointer || t.Elem() != h.typed.out {
		return fmt.Errorf("%s returns %s, cannot decode it into %T", d.RuntimeName, h.typed.out, out)
	}
	return nil
}

// DecodeOutput decodes an output of typed work d, as AwaitTyped returned
// it, into out (a pointer to d's output type).
func DecodeOutput(n *Node, d Declaration, data []byte, out any) error {
	if err := CheckOutput(n, d, out); err != nil {
		return err
	}
	h, _ := n.typedHandler(d)
	if err := h.typed.codec.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode output of %s: %w", d.RuntimeName, err)
	}
	return nil
}
