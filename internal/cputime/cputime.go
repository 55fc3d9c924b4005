// Package cputime reads the CPU time the process has used, for the
// benchmarks that report CPU per operation beside wall time (a group commit
// or a request costs CPU that its latency does not show). It imports nothing
// of the module.
package cputime
