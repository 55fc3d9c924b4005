// Package arbiter owns the third vote of a primary/standby pair: a lease held
// in a store both nodes can reach, whose epoch is the fencing token of the
// primary role. A node acts as primary only while it holds a valid lease, and
// a standby promotes only by winning the lease at a higher epoch. The
// decision rests with an existing engine (PostgreSQL, etcd), never with a
// consensus of our own.
//
// The package defines the Arbiter seam, its errors and timing rules, and
// Memory, the in-memory implementation. Backends live in sub-packages named
// after their dependency (arbiter/postgres, arbiter/etcd). The package
// imports only the standard library; backends import it, never the reverse,
// and no arbiter package imports the engine.
//
// # Clock arithmetic
//
// The store keeps an expiry on its own clock; the holder keeps a deadline on
// its own monotonic clock. Let
//
//	TTL     the lease length, added to the store's clock at each write
//	Renew   the interval between renewals by the holder
//	Margin  the safety margin subtracted from the holder's deadline
//	ρ       the bound on the rate difference between the two clocks
//	        (fraction of elapsed time; NTP-disciplined or not, a quartz
//	        clock stays well under 0.1 %)
//	ε       the longest time the holder may take between checking its
//	        deadline and finishing an action taken as primary
//
// A request that writes the lease is sent at local time t0 and executed by
// the store at store time tx. Since the store runs it after it was sent,
// tx ≥ t0 in real time, and the store's expiry is tx + TTL. The holder sets
//
//	Deadline = t0 + TTL − Margin          (on its monotonic clock)
//
// and stops acting as primary at Deadline. Measured in real time the holder's
// TTL − Margin lasts at most (TTL − Margin)(1 + ρ) and the store's TTL at
// least TTL(1 − ρ), so the holder stops no later than the store's expiry
// whenever
//
//	Margin ≥ 2ρ·TTL + ε
//
// Another node wins the lease only after the store's expiry (or after
// Release), so the two never act as primary at once. Network delay only
// helps: it moves tx later, never earlier. A holder whose process is frozen
// past its deadline (SIGSTOP, a long GC pause) must check the deadline again
// before every action; ε bounds the time between that check and the end of
// the action, not the freeze.
//
// Clock steps: the holder's deadline is on its monotonic clock, which a wall
// clock step does not move. A store that measures expiry on its wall clock
// (PostgreSQL's now()) ends every lease early by the size of a forward step
// of that clock; run such a store with a clock that slews (NTP, chrony),
// or count the largest step in ε.
//
// Renewing: each renewal that succeeds moves the deadline to its own
// t0 + TTL − Margin. Renewals start every Renew interval, so while the store
// answers, the deadline never comes closer than TTL − Margin − Renew − (the
// renewal's round trip). Timing.Validate requires 2·Renew ≤ TTL − Margin: a
// holder gets at least two attempts before its deadline, so one lost or slow
// renewal does not make it step down.
//
// Failover: after the primary dies, the standby can win the lease at most TTL
// after the primary's last successful renewal (plus the store's round trip
// and the standby's retry interval). With DefaultTiming (TTL 2 s, Renew
// 500 ms, Margin 300 ms) the margin covers ρ = 1 % (40 ms) and ε = 260 ms,
// and failover by lease takes at most about 2 s after the last renewal.
package arbiter
