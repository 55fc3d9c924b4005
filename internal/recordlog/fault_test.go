package recordlog

import (
	"errors"
	"io"
	"io/fs"
	"sync"
	"sync/atomic"
)

// faultFS wraps OSFS. Before every operation it calls hook (when set) with
// the operation's name and the file's path; an error from hook is returned
// instead of performing the operation. For "write", a *partialWrite error
// writes its first n bytes before failing. It counts successful file syncs
// and the bytes read from files.
type faultFS struct {
	inner FS
	syncs atomic.Int64
	read  atomic.Int64

	mu   sync.Mutex
	hook func(op, path string) error
}

type partialWrite struct {
	n   int
	err error
}

func (p *partialWrite) Error() string { return p.err.Error() }
func (p *partialWrite) Unwrap() error { return p.err }

func newFaultFS() *faultFS { return &faultFS{inner: OSFS{}} }

func (f *faultFS) setHook(h func(op, path string) error) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}

func (f *faultFS) check(op, path string) error {
	f.mu.Lock()
	h := f.hook
	f.mu.Unlock()
	if h == nil {
		return nil
	}
	return h(op, path)
}

func (f *faultFS) MkdirAll(dir string, perm fs.FileMode) error {
	if err := f.check("mkdir", dir); err != nil {
		return err
	}
	return f.inner.MkdirAll(dir, perm)
}

func (f *faultFS) ReadDir(dir string) ([]string, error) {
	if err := f.check("readdir", dir); err != nil {
		return nil, err
	}
	return f.inner.ReadDir(dir)
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	if err := f.check("open", name); err != nil {
		return nil, err
	}
	file, err := f.inner.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: name}, nil
}

func (f *faultFS) Rename(oldpath, newpath string) error {
	if err := f.check("rename", oldpath); err != nil {
		return err
	}
	return f.inner.Rename(oldpath, newpath)
}

func (f *faultFS) Remove(name string) error {
	if err := f.check("remove", name); err != nil {
		return err
	}
	return f.inner.Remove(name)
}

func (f *faultFS) SyncDir(dir string) error {
	if err := f.check("syncdir", dir); err != nil {
		return err
	}
	return f.inner.SyncDir(dir)
}

func (f *faultFS) Lock(path string) (io.Closer, error) {
	if err := f.check("lock", path); err != nil {
		return nil, err
	}
	return f.inner.Lock(path)
}

type faultFile struct {
	File
	fs   *faultFS
	path string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.check("write", f.path); err != nil {
		var pw *partialWrite
		if errors.As(err, &pw) {
			n, werr := f.File.Write(p[:pw.n])
			if werr != nil {
				return n, werr
			}
			return n, pw.err
		}
		return 0, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Read(p []byte) (int, error) {
	n, err := f.File.Read(p)
	f.fs.read.Add(int64(n))
	return n, err
}

func (f *faultFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

func (f *faultFile) Sync() error {
	if err := f.fs.check("sync", f.path); err != nil {
		return err
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	f.fs.syncs.Add(1)
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	if err := f.fs.check("truncate", f.path); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

func (f *faultFile) Close() error {
	if err := f.fs.check("close", f.path); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}
