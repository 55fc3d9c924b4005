// Package recordlog owns a node's durable, append-only log of record
// transitions: checksummed segment files in one directory (by convention
// DirName under MESH_STATE_DIR), group-committed appends, recovery of a torn
// tail at open, and compaction of the live set into one segment. Entries are
// opaque: the caller encodes its records into Entry values and folds them back
// on replay; the log knows keys, payloads and tombstones, nothing about records.
// An open log holds an exclusive lock on its directory (the file LockName,
// flock(2) on Unix), so two nodes given one state directory fail at Open
// instead of interleaving their appends.
//
// The package touches only the file system, through the small FS seam (the
// operating system's by default), and imports only the standard library.
//
// Durability: Append returns nil only after every byte of its entries has been
// written to the active segment and that file has been fsynced (a segment's
// directory entry is fsynced when the segment is created, before anything is
// appended to it). Entries acknowledged this way are replayed by every later
// Open, in the order they were committed, until a compaction drops them
// because their key was evicted, superseded or not live. A crash can tear
// only bytes that were not yet acknowledged, all in the last group commit;
// Open truncates such a tail of the last segment and reports it in Recovery.
// Damage anywhere else (a sealed segment, or an earlier group commit of the
// last segment, told apart by the marker every group commit starts with) is
// reported as ErrCorrupt, never skipped. A failed fsync leaves the log failed (ErrFailed):
// after it the kernel may have dropped the written pages, so no later append
// is acknowledged until the log is reopened and recovered.
package recordlog
