//go:build !linux

package recordlog

import "os"

// datasync is fsync where the system has no fdatasync the log uses.
func datasync(f *os.File) error { return f.Sync() }

// writeSyncedAt writes data to f at off and syncs it (see the Linux
// version): synced false means the error is the write's.
func writeSyncedAt(f *os.File, data []byte, off int64) (n int, synced bool, err error) {
	if n, err = f.WriteAt(data, off); err != nil {
		return n, false, err
	}
	return n, true, datasync(f)
}
