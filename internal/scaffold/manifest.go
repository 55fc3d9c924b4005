package scaffold

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Entry kinds in a manifest.
const (
	EntryFile = "file"
	EntryDir  = "dir"
)

// Entry is one path of a project tree.
type Entry struct {
	Path   string // slash-separated, relative to the tree root
	Kind   string // EntryFile or EntryDir
	Size   int64  // 0 for directories
	SHA256 string // hex; "" for directories
}

// Manifest lists every file and directory below dir (dir itself excluded),
// sorted by path. It fails on a symbolic link or any other non-regular file,
// so that a tree cannot match by pointing elsewhere.
func Manifest(dir string) ([]Entry, error) {
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return fmt.Errorf("manifest %s: %s is a symbolic link; trees compared by manifest hold only regular files and directories", dir, rel)
		case d.IsDir():
			out = append(out, Entry{Path: rel, Kind: EntryDir})
		case d.Type().IsRegular():
			size, sum, err := hashFile(p)
			if err != nil {
				return err
			}
			out = append(out, Entry{Path: rel, Kind: EntryFile, Size: size, SHA256: sum})
		default:
			return fmt.Errorf("manifest %s: %s is not a regular file (%s)", dir, rel, d.Type())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// HashBytes returns the size and hex SHA-256 of b, as Manifest records them.
func HashBytes(b []byte) (int64, string) {
	sum := sha256.Sum256(b)
	return int64(len(b)), hex.EncodeToString(sum[:])
}

func hashFile(p string) (int64, string, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return 0, "", err
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// Drift is the difference between an expected and an actual tree.
type Drift struct {
	Missing []string // expected but absent
	Extra   []string // present but not expected
	Changed []string // present in both with a different kind, size or hash
}

// Empty reports whether the trees match.
func (d Drift) Empty() bool { return len(d.Missing)+len(d.Extra)+len(d.Changed) == 0 }

// String renders the drift on one line: missing=<a, b> extra=<...> changed=<...>.
func (d Drift) String() string {
	return fmt.Sprintf("missing=<%s> extra=<%s> changed=<%s>",
		strings.Join(d.Missing, ", "), strings.Join(d.Extra, ", "), strings.Join(d.Changed, ", "))
}

// Compare returns how got differs from want. Both must be sorted by path, as
// Manifest returns them.
func Compare(want, got []Entry) Drift {
	var d Drift
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case j == len(got) || i < len(want) && want[i].Path < got[j].Path:
			d.Missing = append(d.Missing, want[i].Path)
			i++
		case i == len(want) || got[j].Path < want[i].Path:
			d.Extra = append(d.Extra, got[j].Path)
			j++
		default:
			if want[i] != got[j] {
				d.Changed = append(d.Changed, want[i].Path)
			}
			i++
			j++
		}
	}
	return d
}
