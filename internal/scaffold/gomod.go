package scaffold

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// ParseGoMod returns the module path and the go directive of a go.mod file,
// each "" when absent. It reads only those two directives and does not
// validate the rest of the file.
func ParseGoMod(b []byte) (module, goVersion string) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			continue
		}
		switch fields[0] {
		case "module":
			if module == "" {
				module = unquote(fields[1])
			}
		case "go":
			if goVersion == "" {
				goVersion = fields[1]
			}
		}
	}
	return module, goVersion
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '`') {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}
