// Package cookie owns the rules for the cluster cookie: how strong one must
// be, how one is read from a file, and how a good one is made. Both the
// runtime (at bootstrap) and meshc use it. It imports only the standard
// library, and no error it returns contains the cookie.
package cookie

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// MinLength is the fewest characters a cluster cookie may have. Thirty-two
// characters of a random cookie carry at least 128 bits, which makes both
// online and offline guessing hopeless.
const MinLength = 32

// minDistinct is the fewest distinct bytes a cookie may use, so that a
// long run of one character is refused with short ones.
const minDistinct = 8

// Remedy is the command that prints a good cookie; errors name it.
const Remedy = "meshc cluster cookie"

// placeholders are fragments of cookies copied from documentation and
// templates. A cookie containing one (case-insensitively, ignoring '-', '_',
// '.' and spaces) is refused, however long.
var placeholders = []string{
	"changeme", "replaceme", "placeholder", "yourcookie", "devcookie",
	"examplecookie", "secretcookie", "insecure", "notsecret", "password", "xxxxxxxx",
}

// ErrWeak is matched (errors.Is) by every refusal of Check.
var ErrWeak = errors.New("cluster cookie is too weak")

// Check reports why c is not an acceptable cluster cookie, or nil. The
// error names the variable or flag given as source and the command that
// makes a good cookie; it never contains the cookie.
func Check(source, c string) error {
	var why string
	switch {
	case len(c) < MinLength:
		why = fmt.Sprintf("it must be at least %d characters long", MinLength)
	case isPlaceholder(c):
		why = "it is a known placeholder value"
	case distinct(c) < minDistinct:
		why = fmt.Sprintf("it must use at least %d different characters", minDistinct)
	default:
		return nil
	}
	return &weakError{source: source, why: why}
}

type weakError struct{ source, why string }

func (e *weakError) Error() string {
	return fmt.Sprintf("Invalid %s: %s; generate a random cookie with `%s`", e.source, e.why, Remedy)
}

func (e *weakError) Is(target error) bool { return target == ErrWeak }

func isPlaceholder(c string) bool {
	folded := strings.Map(func(r rune) rune {
		switch r {
		case '-', '_', '.', ' ':
			return -1
		}
		if r >= 'A' && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, c)
	for _, p := range placeholders {
		if strings.Contains(folded, p) {
			return true
		}
	}
	return false
}

func distinct(c string) int {
	var seen [256]bool
	n := 0
	for i := 0; i < len(c); i++ {
		if !seen[c[i]] {
			seen[c[i]] = true
			n++
		}
	}
	return n
}

// New returns a fresh cookie: 32 bytes (256 bits) from crypto/rand, in
// unpadded base64url (43 characters), so it is safe in env files, YAML and
// shell without quoting.
// New never returns a cookie that Check refuses.
func New() string {
	for {
		var b [32]byte
		rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
		c := base64.RawURLEncoding.EncodeToString(b[:])
		if Check("", c) == nil {
			return c
		}
	}
}

// maxFileSize bounds a cookie file; a cookie is a line, not a document.
const maxFileSize = 4096

// ReadFile reads a cookie from path, trimmed of surrounding white space. A
// file that its group or other users may read, or that is not a regular
// file, is refused: the cookie is the cluster's only secret. source names
// the variable or flag the path came from, for errors.
func ReadFile(source, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", source, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: %w", source, err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: %s is not a regular file", source, path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("%s: %s is readable or writable by other users (mode %04o); run `chmod 600 %s`", source, path, perm, path)
	}
	if st.Size() > maxFileSize {
		return "", fmt.Errorf("%s: %s is larger than %d bytes", source, path, maxFileSize)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s: %w", source, path, err)
	}
	if len(b) > maxFileSize {
		return "", fmt.Errorf("%s: %s is larger than %d bytes", source, path, maxFileSize)
	}
	c := strings.TrimSpace(string(b))
	if c == "" {
		return "", fmt.Errorf("%s: %s is empty", source, path)
	}
	return c, nil
}
