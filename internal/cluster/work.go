package cluster

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"

	"meshgo.dev/mesh/internal/continuity"
)

// DefaultReplicationCount is the replication count of declared work and of
// clustered routes unless an option or argument says otherwise: the owner plus
// one mirrored replica.
const DefaultReplicationCount = 2

// Declaration is the registration of one piece of declared work. It exists so
// work can be declared at package level: var _ = mesh.Work(Add).
type Declaration struct {
	RuntimeName      string
	ReplicationCount int
}

// WorkOption changes how declared work is registered. Like RouteOption it is
// an opaque struct around the function that applies it.
type WorkOption struct{ apply func(*workOptions) }

type workOptions struct {
	count int
	codec Codec // nil: JSON
	retry retryPolicy
}

// ReplicationCount sets the number of copies of the work's continuity record,
// owner included. 1 runs without a mirror; 2 (the default) mirrors the record to
// the peer before the work runs. Counts of 3 or more register, and every
// submission is then durably rejected as unsupported_replication_count:<n>.
func ReplicationCount(n int) WorkOption {
	return WorkOption{func(o *workOptions) { o.count = n }}
}

// Work declares fn as clustered work under the runtime name <package>.<Func>.
// fn is either func(context.Context) (R, error), which runs once per
// cluster at boot (request key startup::<runtime name>) on the placement
// owner while a standby skips it, or typed work func(context.Context, In)
// (Out, error), which runs when submitted with its input (SubmitTyped) and
// whose encoded output is stored on its record.
//
// Work panics when fn is not a named top-level function of one of those
// shapes, when the name is already declared, when the replication count is
// below 1, or when In or Out cannot be encoded by the JSON codec (a channel,
// a function, a complex number...): these are programming errors that must
// stop the program at start-up.
func Work(fn any, opts ...WorkOption) Declaration {
	o := workOptions{count: DefaultReplicationCount}
	for _, opt := range opts {
		opt.apply(&o)
	}
	name, err := runtimeName(fn)
	if err != nil {
		panic(fmt.Sprintf("mesh.Work: %v", err))
	}
	if o.count < 1 {
		panic(fmt.Sprintf("mesh.Work(%s): replication count must be at least 1, got %d", name, o.count))
	}
	if err := o.retry.validate(); err != nil {
		panic(fmt.Sprintf("mesh.Work(%s): %v", name, err))
	}
	h, err := newWorkHandler(name, fn, o)
	if err != nil {
		panic(fmt.Sprintf("mesh.Work(%s): %v", name, err))
	}
	if err := defaultRegistry.add(h); err != nil {
		panic(fmt.Sprintf("mesh.Work: %v", err))
	}
	return Declaration{RuntimeName: name, ReplicationCount: o.count}
}

// handler is one declared handler: work or a clustered route.
type handler struct {
	name  string
	count int
	kind  continuity.Kind
	run   func(context.Context) error // untyped work
	typed *typedWork                  // typed work (run is nil)
	retry retryPolicy                 // work
	http  http.Handler                // route
	route routeOptions                // route
}

// registry maps runtime names to declared handlers. Nodes started in one process
// share it: every node of a binary knows the same handlers.
type registry struct {
	mu       sync.RWMutex // guards handlers
	handlers map[string]*handler
}

var defaultRegistry = &registry{handlers: map[string]*handler{}}

func (r *registry) add(h *handler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.handlers[h.name]; ok {
		if h.kind == continuity.KindRoute && old.kind == continuity.KindRoute && old.count == h.count {
			if !old.route.equal(h.route) {
				return routeOptionsError(h.name)
			}
			return nil // the same route wrapped again (a second mux) is the same handler
		}
		return fmt.Errorf("%s is already declared; each function may be declared once", h.name)
	}
	r.handlers[h.name] = h
	return nil
}

func (r *registry) get(name string) (*handler, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.handlers[name]
	return h, ok
}

// work returns the declared work handlers sorted by runtime name.
func (r *registry) work() []*handler {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*handler
	for _, h := range r.handlers {
		if h.kind == continuity.KindWork {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// runtimeName derives <package>.<Func> (or <package>.<Type>.<Method> for a
// method value) from a function value, refusing anything another node of the
// same binary could not find by name.
func runtimeName(fn any) (string, error) {
	v := reflect.ValueOf(fn)
	if v.Kind() != reflect.Func || v.IsNil() {
		return "", fmt.Errorf("%T is not a function", fn)
	}
	f := runtime.FuncForPC(v.Pointer())
	if f == nil {
		return "", fmt.Errorf("cannot resolve the name of %T", fn)
	}
	return runtimeNameFromSymbol(f.Name())
}

// runtimeNameFromSymbol turns a linker symbol such as
// "example.com/app/work.Add" or "example.com/app/todos.(*Store).List-fm" into a
// runtime name.
func runtimeNameFromSymbol(sym string) (string, error) {
	full := sym
	slash := strings.LastIndex(sym, "/")
	rest := sym[slash+1:]
	dot := strings.Index(rest, ".")
	if dot <= 0 {
		return "", fmt.Errorf("cannot derive a runtime name from %s", full)
	}
	pkg, name := rest[:dot], rest[dot+1:]
	method := strings.HasSuffix(name, "-fm")
	name = strings.TrimSuffix(name, "-fm")
	if strings.Contains(name, "[") {
		return "", fmt.Errorf("%s: generic functions cannot be declared; declare a named non-generic function", full)
	}
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" || strings.HasPrefix(p, "func") && isDigits(strings.TrimPrefix(p, "func")) || p == "glob" || p == "init" {
			return "", fmt.Errorf("%s: closures and anonymous functions cannot be declared; declare a named top-level function", full)
		}
	}
	switch len(parts) {
	case 1:
		if method {
			return "", fmt.Errorf("%s: cannot derive a runtime name", full)
		}
		return pkg + "." + parts[0], nil
	case 2:
		typ := strings.TrimSuffix(strings.TrimPrefix(parts[0], "(*"), ")")
		if typ == "" || !isExported(typ) {
			return "", fmt.Errorf("%s: methods of unexported type %q cannot be declared; use an exported type or a top-level function", full, typ)
		}
		return pkg + "." + typ + "." + parts[1], nil
	default:
		return "", fmt.Errorf("%s: closures and anonymous functions cannot be declared; declare a named top-level function", full)
	}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isExported(s string) bool { return s != "" && s[0] >= 'A' && s[0] <= 'Z' }
