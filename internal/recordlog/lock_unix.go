//go:build unix

package recordlog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

func lockFile(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: held by another process or another open log", ErrLocked)
		}
		return nil, err
	}
	return f, nil // closing the file releases the lock
}
