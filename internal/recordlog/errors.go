package recordlog

import "errors"

// Sentinel errors, matched with errors.Is.
var (
	// ErrClosed is returned by Append and Compact after Close.
	ErrClosed = errors.New("record log closed")
	// ErrCorrupt means a segment holds bytes that are not a valid entry at a
	// place where a crash cannot have torn them: in a segment other than the
	// last, before a later group commit of the last segment, or a
	// well-checksummed entry of an unknown format. The message names the
	// file and the byte offset.
	ErrCorrupt = errors.New("record log corrupt")
	// ErrFailed means an fsync (or the clean-up of a failed write) failed: the
	// log acknowledges nothing more until it is closed and opened again.
	ErrFailed = errors.New("record log failed")
	// ErrLocked is returned by Open when another open log, in this process
	// or another, holds the directory.
	ErrLocked = errors.New("record log directory in use")
	// ErrInvalidEntry is returned by Append for an entry it cannot store
	// (empty key, unknown kind, a value on an eviction, or too large).
	ErrInvalidEntry = errors.New("invalid record log entry")
)
