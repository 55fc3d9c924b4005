package recordlog

import (
	"io"
	"io/fs"
	"os"
)

// FS is the file-system seam of the log. The default, OSFS, is the operating
// system's; tests wrap it to count fsyncs and to inject disk-full, I/O errors
// and crashes between steps. Implementations must be safe for concurrent use:
// the writer goroutine and a compaction call it at the same time.
type FS interface {
	// MkdirAll creates dir and its parents, like os.MkdirAll.
	MkdirAll(dir string, perm fs.FileMode) error
	// ReadDir returns the names of the entries of dir (any order).
	ReadDir(dir string) ([]string, error)
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Rename atomically replaces newpath with oldpath, like os.Rename.
	Rename(oldpath, newpath string) error
	// Remove removes a file, like os.Remove.
	Remove(name string) error
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file at path (creating it) for
	// as long as the returned Closer is open, failing at once with an
	// error wrapping ErrLocked if another open log holds it.
	Lock(path string) (io.Closer, error)
}

// File is an open file of an FS; *os.File implements it.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	Stat() (fs.FileInfo, error)
	Sync() error
	Truncate(size int64) error
}

// OSFS is the operating system's file system.
type OSFS struct{}

// MkdirAll implements FS.
func (OSFS) MkdirAll(dir string, perm fs.FileMode) error { return os.MkdirAll(dir, perm) }

// ReadDir implements FS.
func (OSFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Rename implements FS.
func (OSFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// SyncDir implements FS.
func (OSFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Lock implements FS with flock(2) where the system has it; elsewhere it
// only creates the file.
func (OSFS) Lock(path string) (io.Closer, error) { return lockFile(path) }
