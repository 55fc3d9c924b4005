//go:build !linux

package recordlog

import "os"

// datasync is fsync where the system has no fdatasync the log uses.
func datasync(f *os.File) error { return f.Sync() }
