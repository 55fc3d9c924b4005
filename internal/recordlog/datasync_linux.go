package recordlog

import (
	"errors"
	"io"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// datasync flushes f's data and the metadata needed to read it back
// (fdatasync): for a write into space the file already had, no journal
// commit of the file system.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if err != syscall.EINTR {
			return err
		}
	}
}

// noDsyncWrites is set once the kernel refused a write with RWF_DSYNC
// (older than Linux 4.7): writeSyncedAt then writes and syncs in two
// calls.
var noDsyncWrites atomic.Bool

// writeSyncedAt writes data to f at off and returns once it is durable as
// after an fdatasync, in one system call where the kernel has one
// (pwritev2 with RWF_DSYNC): one entry into the kernel and one blocking
// call per group commit instead of two, and the flush covers the written
// range only, not other dirty pages of the file (the preallocation's
// filler being written meanwhile). synced reports that the call got as far
// as making the written bytes durable, or failing to: an error with synced
// false is the write's alone (nothing reached the disk's cache, or only n
// bytes did), as from WriteAt.
func writeSyncedAt(f *os.File, data []byte, off int64) (n int, synced bool, err error) {
	if !noDsyncWrites.Load() {
		iov := [][]byte{data}
		for {
			n, err = unix.Pwritev2(int(f.Fd()), iov, off, unix.RWF_DSYNC)
			if err != syscall.EINTR {
				break
			}
		}
		switch {
		case err == nil && n == len(data):
			return n, true, nil
		case err == nil:
			// A short write: the bytes written are durable, the rest
			// is not there. The caller cuts the batch back.
			return n, false, io.ErrShortWrite
		case errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EOPNOTSUPP):
			noDsyncWrites.Store(true) // nothing was written; two calls from now on
		default:
			// The write and the flush are one call: an I/O error may
			// be the flush's, after which the page cache cannot be
			// trusted (as after a failed fsync).
			return 0, true, err
		}
	}
	if n, err = f.WriteAt(data, off); err != nil {
		return n, false, err
	}
	return n, true, datasync(f)
}
