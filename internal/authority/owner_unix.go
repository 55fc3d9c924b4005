//go:build unix

package authority

import (
	"io/fs"
	"syscall"
)

// ownerOf returns the uid that owns the file st describes.
func ownerOf(st fs.FileInfo) (int, bool) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(sys.Uid), true
}
