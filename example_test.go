package mesh_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"meshgo.dev/mesh"
)

// SendWelcome is declared work: it runs once per cluster at boot and
// whenever it is submitted under a new request key.
func SendWelcome(ctx context.Context) (string, error) {
	id, _ := mesh.IdentityFrom(ctx)
	return "welcome sent for " + id.RequestKey, nil
}

// Declared next to the function, at package level, with one copy of its
// record (no mirror): a standalone node can run it.
var sendWelcome = mesh.Work(SendWelcome, mesh.ReplicationCount(1))

// ListTodos is a clustered route handler.
func ListTodos(w http.ResponseWriter, r *http.Request) {
	id, _ := mesh.IdentityFrom(r.Context())
	fmt.Fprintf(w, "todos served under epoch %d", id.Epoch)
}

func ExampleWork() {
	// Usually: var _ = mesh.Work(SendWelcome) at package level.
	fmt.Println(sendWelcome.RuntimeName, sendWelcome.ReplicationCount)
	// Output: mesh_test.SendWelcome 1
}

func ExampleClustered() {
	n, err := mesh.Start(mesh.Config{}) // standalone; a service calls mesh.StartFromEnv
	if err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(context.Background())

	mux := http.NewServeMux()
	// Count 1: one copy of the record. mesh.ClusteredDefault mirrors it to
	// the standby first (count 2). n.For serves it on n instead of the
	// process's node, as a test or an embedding program may need.
	mux.Handle("GET /todos", n.For(mesh.Clustered(1, ListTodos)))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/todos", nil))
	key := rec.Header().Get(mesh.HeaderRequestKey)
	fmt.Println(rec.Code, rec.Body.String())
	fmt.Println(strings.HasPrefix(key, "http-route::mesh_test.ListTodos::"))
	// Output:
	// 200 todos served under epoch 0
	// true
}

func ExampleIdentityFrom() {
	handler := func(w http.ResponseWriter, r *http.Request) {
		id, ok := mesh.IdentityFrom(r.Context())
		if !ok {
			fmt.Println("not a clustered request")
			return
		}
		// Pass id.Epoch downstream as a fencing token.
		fmt.Println(id.Epoch)
	}
	// Outside a clustered route or declared work there is no identity.
	handler(httptest.NewRecorder(), httptest.NewRequest("GET", "/plain", nil))
	// Output: not a clustered request
}

func ExampleNode_Submit() {
	n, err := mesh.Start(mesh.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	ctx := context.Background()

	// The same key and payload twice: the work runs once.
	first, err := n.Submit(ctx, sendWelcome, "welcome:alice", "alice@example.com")
	if err != nil {
		log.Fatal(err)
	}
	again, err := n.Submit(ctx, sendWelcome, "welcome:alice", "alice@example.com")
	if err != nil {
		log.Fatal(err)
	}
	// The same key with another payload is a conflict.
	other, err := n.Submit(ctx, sendWelcome, "welcome:alice", "bob@example.com")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(first.Outcome, again.Outcome, other.Outcome)

	// Submit returns once the record is stored; the work runs on.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if rec, _ := n.Record("welcome:alice"); rec.Phase == "completed" {
			fmt.Println(rec.Phase, rec.Result)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Output:
	// created duplicate conflict
	// completed succeeded
}

// A service's main: bootstrap from the MESH_* environment, mount clustered
// routes and the probes, serve, and shut down on SIGTERM. With no MESH_*
// variables set the node is standalone; with MESH_CLUSTER_COOKIE_FILE (or
// MESH_CLUSTER_COOKIE), MESH_DISCOVERY_SEED and MESH_NODE_NAME it joins its
// pair. (No Output: this example is compiled, not run, since it serves
// until it is signalled.)
func ExampleStartFromEnv() {
	st, err := mesh.StartFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("mesh %s node=%s", st.Mode, st.NodeName)

	mux := http.NewServeMux()
	mux.Handle("GET /todos", mesh.Clustered(1, ListTodos))
	mux.Handle("GET /livez", mesh.LivenessHandler())
	mux.Handle("GET /readyz", mesh.ReadinessHandler())
	mux.Handle("GET /metrics", mesh.MetricsHandler())
	srv := &http.Server{Addr: ":8080", Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Fatal(err)
		}
	}()
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	_ = mesh.Shutdown(shutdown)
}

// A program that serves a Prometheus registry of its own adds the node's
// metrics to it; mesh.MetricsHandler serves them on a registry of the
// runtime's instead.
func ExampleRegisterMetrics() {
	reg := prometheus.NewRegistry()
	if err := mesh.RegisterMetrics(reg); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))

	// The node's metrics can be registered once per registry.
	var dup prometheus.AlreadyRegisteredError
	fmt.Println(errors.As(mesh.RegisterMetrics(reg), &dup))
	// Output: true
}

func ExampleReadinessHandler() {
	mux := http.NewServeMux()
	// Mount both probes; they follow the node StartFromEnv starts.
	mux.Handle("GET /livez", mesh.LivenessHandler())
	mux.Handle("GET /readyz", mesh.ReadinessHandler())

	// For a node of your own, use its methods.
	n, err := mesh.Start(mesh.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	n.ReadinessHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Fatal(err)
	}
	rec = httptest.NewRecorder()
	n.ReadinessHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"cluster_role":"primary","live":true,"mode":"standalone","node":"standalone@local","promotion_epoch":0,"ready":true,"replication_health":"local_only"}
	// 503 {"cluster_role":"primary","live":false,"mode":"standalone","node":"standalone@local","promotion_epoch":0,"ready":false,"reason":"stopped","replication_health":"local_only"}
}

// Quote is what Price works on.
type Quote struct {
	Item  string `json:"item"`
	Count int    `json:"count"`
}

// Total is what Price returns; it is stored on the record.
type Total struct {
	Cents int `json:"cents"`
}

// Price is typed declared work: it takes its input and returns an output.
func Price(ctx context.Context, q Quote) (Total, error) {
	if q.Count <= 0 {
		return Total{}, errors.New("nothing to price")
	}
	return Total{Cents: 250 * q.Count}, nil
}

var price = mesh.Work(Price, mesh.ReplicationCount(1))

func ExampleSubmitWork() {
	n, err := mesh.Start(mesh.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	h, err := mesh.SubmitWork(ctx, n, Price, "quote:7", Quote{Item: "tea", Count: 4})
	if err != nil {
		log.Fatal(err)
	}
	total, err := h.Result(ctx) // a Total: no cast
	fmt.Println(h.Outcome(), total.Cents, err)

	// The same input again: the stored output, without running Price again.
	again, _ := mesh.SubmitWork(ctx, n, Price, "quote:7", Quote{Item: "tea", Count: 4})
	total, err = again.Result(ctx)
	fmt.Println(again.Outcome(), total.Cents, err)

	// Another process reads it by key.
	looked, _ := mesh.Lookup[Total](ctx, n, price, "quote:7")
	total, err = looked.Result(ctx)
	fmt.Println(total.Cents, err)

	// A returned error rejects the record; Result carries it.
	failed, _ := mesh.SubmitWork(ctx, n, Price, "quote:8", Quote{Item: "tea"})
	_, err = failed.Result(ctx)
	var we *mesh.WorkError
	fmt.Println(errors.As(err, &we), we.Reason)
	// Output:
	// created 1000 <nil>
	// duplicate 1000 <nil>
	// 1000 <nil>
	// true handler_error: nothing to price
}
