package procstat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcessStat(t *testing.T) {
	// A kernel thread as /proc shows it, and a command name with spaces and
	// parentheses: fields are counted from the last ')'.
	kworker := "12 (kworker/u8:0-ext4-rsv-conversion) I 2 0 0 0 -1 69238880 0 0 0 0 0 32 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	odd := "4242 (route app) (x)) S 1 4242 4242 0 -1 4194560 1520 0 0 0 1234 567 0 0 20 0 9 0 100 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	for in, want := range map[string]time.Duration{kworker: 320 * time.Millisecond, odd: 18010 * time.Millisecond} {
		got, err := parseProcessStat([]byte(in))
		if err != nil || got != want {
			t.Errorf("%.20q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "12 kworker I 2", "12 (x) S 1 2 3", "12 (x) S 1 4242 4242 0 -1 4194560 1520 0 0 0 abc 567 0"} {
		if _, err := parseProcessStat([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseSystemStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	in := "cpu  39264 0 18784 60625 292 0 1388 41 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"
	got, err := parseSystemStat([]byte(in))
	if want := time.Duration(39264+18784+1388+41) * 10 * time.Millisecond; err != nil || got != want {
		t.Errorf("%v, %v; want %v", got, err, want)
	}
	if _, err := parseSystemStat([]byte("intr 1 2 3\n")); err == nil {
		t.Error("a file without the cpu line parsed")
	}
}

// The readers of this machine's /proc agree with the parsers: this process
// has used some CPU, the machine more, and the load average is three
// numbers.
func TestReadsThisMachine(t *testing.T) {
	self, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	busy, err := SystemBusy()
	if err != nil {
		t.Fatal(err)
	}
	if busy < self {
		t.Errorf("machine busy %v < this process's CPU %v", busy, self)
	}
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Errorf("LoadAvg() = %q, want three numbers", LoadAvg())
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1) succeeded")
	}
}

func TestParseIOAndSwitches(t *testing.T) {
	io := "rchar: 1520\nwchar: 88\nsyscr: 463824\nsyscw: 199734\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n"
	if r, w, err := parseIO([]byte(io)); err != nil || r != 463824 || w != 199734 {
		t.Errorf("io: %d %d %v", r, w, err)
	}
	// "voluntary_ctxt_switches:" is also the tail of the involuntary name:
	// each must be read from its own line.
	status := "Name:\trouteapp\nState:\tS (sleeping)\nThreads:\t1\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t6\n"
	if v, n, err := parseSwitches([]byte(status)); err != nil || v != 7 || n != 6 {
		t.Errorf("status: %d %d %v", v, n, err)
	}
	for _, bad := range []string{"", "syscr: 1\n", "syscr: x\nsyscw: 2\n"} {
		if _, _, err := parseIO([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// A read and a sleep of this process show in its activity.
func TestProcessActivityOfThisProcess(t *testing.T) {
	a, err := ProcessActivity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile("/proc/self/stat"); err != nil { // a read: syscr grows
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // a sleep: some thread sleeps
	b, err := ProcessActivity(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	d := b.Sub(a)
	if d.ReadCalls < 1 || d.Sleeps < 1 || d.WriteCalls < 0 || d.Preempted < 0 {
		t.Errorf("activity over a read and a sleep: %+v", d)
	}
}
