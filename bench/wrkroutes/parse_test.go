package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"meshgo.dev/mesh/bench/internal/procstat"
)

func readSample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The samples are wrk 4.1.0 (Debian's package) output captured with
// routes.lua against bench/routeapp and a deliberately slow server.
func TestParseWrkPlain(t *testing.T) {
	r, err := parseWrk(readSample(t, "wrk-plain.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Threads != 2 || r.Connections != 8 {
		t.Errorf("threads %d connections %d, want 2 and 8", r.Threads, r.Connections)
	}
	if r.Requests != 28774 || r.Bench.Requests != 28774 || r.Elapsed != 1120*time.Millisecond {
		t.Errorf("requests %d/%d in %v", r.Requests, r.Bench.Requests, r.Elapsed)
	}
	if r.RPS != 25695.09 {
		t.Errorf("req/s %v", r.RPS)
	}
	b := r.Bench
	if b.P50US != 181 || b.P90US != 6632 || b.P99US != 20191 || b.P999US != 32188 || b.MaxUS != 36637 || b.MeanUS != 1908.3 {
		t.Errorf("latencies %+v", b)
	}
	if b.DurationUS != 1119825 || b.Bytes != 5898670 {
		t.Errorf("duration %d bytes %d", b.DurationUS, b.Bytes)
	}
	if r.Errors() != 0 || r.OK() != 28774 {
		t.Errorf("errors %d ok %d", r.Errors(), r.OK())
	}
	if got := r.Dist["50"]; got != 181*time.Microsecond {
		t.Errorf("text p50 %v", got)
	}
	if got := r.Dist["99"]; got != 20190*time.Microsecond {
		t.Errorf("text p99 %v", got)
	}
	if len(b.KeysUsedByThread) != 2 || b.KeysUsed != 0 {
		t.Errorf("keys %d by thread %v", b.KeysUsed, b.KeysUsedByThread)
	}
	w := newWindow(1, 1, "plain", r, [3]time.Duration{2 * time.Second, 10 * time.Millisecond, time.Second})
	if w.RPS < 25694 || w.RPS > 25696 { // 28774 answers in 1.119825 s
		t.Errorf("window req/s %v", w.RPS)
	}
	if w.CPUPrimary < 69.5 || w.CPUPrimary > 69.6 { // 2 s over 28774 requests
		t.Errorf("primary CPU per request %v µs", w.CPUPrimary)
	}
	if w.P999ms != 32.188 {
		t.Errorf("window p99.9 %v ms", w.P999ms)
	}
}

func TestParseWrkKeyedAndErrors(t *testing.T) {
	r, err := parseWrk(readSample(t, "wrk-keyed-spilled.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if b := r.Bench; b.KeysUsed != 31089 || b.KeysSpilled != 31085 || len(b.KeysUsedByThread) != 2 ||
		b.KeysUsedByThread[0] != 28566 || b.KeysUsedByThread[1] != 2523 {
		t.Errorf("keys %+v", b)
	}

	r, err = parseWrk(readSample(t, "wrk-404.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Non2xx != 24858 || r.Errors() != 24858 || r.OK() != 0 {
		t.Errorf("non-2xx %d errors %d ok %d", r.Non2xx, r.Errors(), r.OK())
	}
	if w := newWindow(1, 1, "x", r, [3]time.Duration{}); w.RPS != 0 || w.Errors != 24858 {
		t.Errorf("a window of 404s: %v req/s, %d errors", w.RPS, w.Errors)
	}

	r, err = parseWrk(readSample(t, "wrk-timeouts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if r.SocketErrors != [4]int64{0, 0, 0, 4} || r.Bench.ErrTimeout != 4 || r.Errors() != 4 {
		t.Errorf("socket errors %v, errors %d", r.SocketErrors, r.Errors())
	}
	if r.Dist["99"] != 0 || r.RPS != 1.99 {
		t.Errorf("dist %v rps %v", r.Dist, r.RPS)
	}
}

func TestParseWrkRejects(t *testing.T) {
	plain := readSample(t, "wrk-plain.txt")
	cases := map[string]string{
		"no script":        readSample(t, "wrk-no-script.txt"),
		"truncated":        plain[:strings.Index(plain, "Requests/sec:")],
		"counts disagree":  strings.Replace(plain, "meshbench requests=28774", "meshbench requests=28775", 1),
		"field missing":    strings.Replace(plain, " p999_us=32188", "", 1),
		"threads disagree": strings.Replace(plain, "keys_used_by_thread=0,0", "keys_used_by_thread=0,3", 1),
		"bad duration":     strings.Replace(plain, "181.00us", "181.00", 1),
		"empty":            "",
	}
	for name, out := range cases {
		if _, err := parseWrk(out); err == nil {
			t.Errorf("%s: parsed without error", name)
		}
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"63.00us": 63 * time.Microsecond, "0.96ms": 960 * time.Microsecond, "1.10s": 1100 * time.Millisecond,
		"2.00m": 2 * time.Minute, "1.00h": time.Hour,
	} {
		got, err := parseWrkDuration(in)
		if err != nil || got.Round(time.Microsecond) != want {
			t.Errorf("%s: %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := parseWrkDuration("12"); err == nil {
		t.Error("a duration without a unit parsed")
	}
}

func TestSummaries(t *testing.T) {
	mk := func(round int, name string, rps, p99 float64, req int64, cpu time.Duration) *window {
		// The standby does three reads and one sleep per request.
		return &window{Round: round, Scenario: name, RPS: rps, P99ms: p99, Requests: req, cpu: [3]time.Duration{cpu, 0, 0},
			act: [2]procstat.Activity{{WriteCalls: req}, {ReadCalls: 3 * req, Sleeps: req}}}
	}
	rows := []*window{
		mk(1, "plain", 100, 1, 100, 100*time.Microsecond), mk(1, "one", 90, 1.5, 90, 180*time.Microsecond),
		mk(2, "one", 60, 2, 60, 120*time.Microsecond), mk(2, "plain", 80, 1, 80, 80*time.Microsecond),
		mk(3, "plain", 100, 1, 100, 100*time.Microsecond), mk(3, "one", 95, 1.2, 95, 190*time.Microsecond),
	}
	setRatios(rows)
	sums := summarize([]*scenario{{Name: "plain"}, {Name: "one"}}, rows)
	one := sums[1]
	if one.Ratio.Median != 0.9 || one.Ratio.Min != 0.75 || one.Ratio.Max != 0.95 {
		t.Errorf("ratio %+v", one.Ratio)
	}
	if one.RPS.Median != 90 || one.P99MinusPlainMs != 0.5 || one.CPUPrimary != 2 || sums[0].CPUPrimary != 1 {
		t.Errorf("summary %+v", one)
	}
	if (one.ActPrimary != perRequest{Writes: 1}) || (one.ActStandby != perRequest{Reads: 3, Sleeps: 1}) {
		t.Errorf("activity per request %+v / %+v", one.ActPrimary, one.ActStandby)
	}
}

// The meshbench line routes.lua prints and the fields parseMeshbench wants
// must stay in step: build a line from the script's own format string.
func TestRoutesLuaLineParses(t *testing.T) {
	re := regexp.MustCompile(`([a-z0-9_]+)=%(\.1f|d|s)`)
	fields := re.FindAllStringSubmatch(string(routesLua), -1)
	if len(fields) < 10 {
		t.Fatalf("routes.lua: %d meshbench fields found", len(fields))
	}
	var parts []string
	for _, f := range fields {
		parts = append(parts, f[1]+"=1")
	}
	b, err := parseMeshbench(parts)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(parts, " "), err)
	}
	if b.P999US != 1 || b.KeysUsed != 1 || len(b.KeysUsedByThread) != 1 {
		t.Errorf("%+v", b)
	}
}
