//go:build !unix

package recordlog

import (
	"io"
	"os"
)

// lockFile only creates the file where there is no flock: two logs opened
// on one directory are not detected there.
func lockFile(path string) (io.Closer, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
}
