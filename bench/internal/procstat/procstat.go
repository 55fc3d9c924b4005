// Package procstat reads the Linux /proc figures the benchmark programs
// report next to their numbers: a process's CPU time, the CPU time the whole
// machine was busy, and the load average. Only the standard library.
package procstat

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every Linux
// architecture Go supports.
const clockTick = time.Second / 100

// ProcessCPU returns the user and system CPU time process pid has used so
// far (/proc/<pid>/stat).
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseProcessStat(b)
}

// SystemBusy returns the CPU time all CPUs have been busy so far: every
// /proc/stat state but idle and iowait (guest time is already in user).
func SystemBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseSystemStat(b)
}

// LoadAvg returns the 1, 5 and 15 minute load averages as /proc/loadavg
// shows them ("0.52 0.61 0.70"), or "?" when it cannot be read.
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// parseProcessStat returns utime+stime from the contents of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseProcessStat(b []byte) (time.Duration, error) {
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name", len(f))
	}
	ut, err := strconv.ParseInt(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat utime: %w", err)
	}
	st, err := strconv.ParseInt(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat stime: %w", err)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// parseSystemStat returns the busy time (every state but idle and iowait;
// guest time is already in user) of all CPUs from the contents of /proc/stat.
func parseSystemStat(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: first line %q", line)
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest, guest_nice
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// Activity is what a process did so far beyond its CPU time: its read- and
// write-family system calls as /proc/<pid>/io counts them (syscr, syscw:
// every read(2) and write(2) on a socket, including a read that found
// nothing and returned EAGAIN), and its threads' context switches, summed
// over /proc/<pid>/task: voluntary ones (a thread went to sleep, in a futex
// or epoll_wait, and was woken later) and involuntary ones (it was
// preempted). A thread that exited takes its counts with it, which for a Go
// program, whose threads live as long as it does, is rare.
type Activity struct {
	ReadCalls, WriteCalls int64
	Sleeps, Preempted     int64
}

// Sub returns a − b, field by field.
func (a Activity) Sub(b Activity) Activity {
	return Activity{a.ReadCalls - b.ReadCalls, a.WriteCalls - b.WriteCalls, a.Sleeps - b.Sleeps, a.Preempted - b.Preempted}
}

// Add returns a + b, field by field.
func (a Activity) Add(b Activity) Activity {
	return Activity{a.ReadCalls + b.ReadCalls, a.WriteCalls + b.WriteCalls, a.Sleeps + b.Sleeps, a.Preempted + b.Preempted}
}

// ProcessActivity reads process pid's Activity.
func ProcessActivity(pid int) (Activity, error) {
	var a Activity
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return a, err
	}
	if a.ReadCalls, a.WriteCalls, err = parseIO(b); err != nil {
		return a, err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return a, err
	}
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited since the listing
		}
		vol, invol, err := parseSwitches(b)
		if err != nil {
			return a, err
		}
		a.Sleeps += vol
		a.Preempted += invol
	}
	return a, nil
}

// parseIO returns syscr and syscw from the contents of /proc/<pid>/io.
func parseIO(b []byte) (reads, writes int64, err error) {
	return twoFields(b, "syscr:", "syscw:")
}

// parseSwitches returns voluntary_ctxt_switches and
// nonvoluntary_ctxt_switches from the contents of a /proc status file.
func parseSwitches(b []byte) (vol, invol int64, err error) {
	return twoFields(b, "voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")
}

// twoFields returns the integer values of the lines starting with the two
// names, each of which must be there.
func twoFields(b []byte, first, second string) (int64, int64, error) {
	var v [2]int64
	var seen [2]bool
	for line := range strings.Lines(string(b)) {
		for i, name := range [2]string{first, second} {
			if rest, ok := strings.CutPrefix(line, name); ok {
				n, err := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				if err != nil {
					return 0, 0, fmt.Errorf("%s %w", name, err)
				}
				v[i], seen[i] = n, true
			}
		}
	}
	if !seen[0] || !seen[1] {
		return 0, 0, fmt.Errorf("no %s and %s lines", strings.TrimSuffix(first, ":"), strings.TrimSuffix(second, ":"))
	}
	return v[0], v[1], nil
}
