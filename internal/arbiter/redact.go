package arbiter

import (
	"net/url"
	"strings"
)

// Redacted is how a store's connection string is shown anywhere it could be
// read (logs, errors, status): its scheme and hosts only, never the user,
// password, database or parameters. A string that is not a URL shows as
// "[redacted]".
func Redacted(dsn string) string {
	// Parsed by hand, not with net/url: a list of hosts (etcd://a:2379,b:2379)
	// is not a URL host to every Go release this module supports.
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok || !validScheme(scheme) {
		return "[redacted]"
	}
	if scheme == string(KindEtcd) {
		// etcd://[user:password@]hosts has no path, so the user info
		// ends at the last '@' whatever it holds: a password with a '/'
		// or '#' not percent-encoded must not end it early.
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			rest = rest[i+1:]
		}
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if rest == "" || strings.Count(rest, "[") != strings.Count(rest, "]") || strings.ContainsAny(rest, " \t\n\"'") {
		return "[redacted]"
	}
	return scheme + "://" + rest
}

// validScheme reports whether s is a URL scheme: a letter, then letters,
// digits, '+', '-' or '.'.
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// Scrub removes the connection string dsn, its password and its user info
// from msg, for errors that quote what a driver said. Scrub of an empty dsn
// returns msg unchanged.
func Scrub(msg, dsn string) string {
	if dsn == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, dsn, Redacted(dsn))
	rawInfo, user, pw, ok := userinfoOf(dsn)
	if !ok {
		return msg
	}
	if rawInfo != "" {
		msg = strings.ReplaceAll(msg, rawInfo+"@", "")
	}
	if pw != "" {
		msg = strings.ReplaceAll(msg, pw, "[redacted]")
		if esc := url.QueryEscape(pw); esc != pw {
			msg = strings.ReplaceAll(msg, esc, "[redacted]")
		}
		if user != "" {
			msg = strings.ReplaceAll(msg, user+":[redacted]", "[redacted]")
		}
	}
	return msg
}

// userinfoOf returns the user info of dsn as written (still
// percent-encoded), and its user and password decoded. An etcd value is
// read by hand (its host list is not a URL host to every Go release this
// module supports, and its user info ends at the last '@'); anything else
// through net/url.
func userinfoOf(dsn string) (raw, user, password string, ok bool) {
	if rest, isEtcd := strings.CutPrefix(dsn, string(KindEtcd)+"://"); isEtcd {
		info, _, has := cutUserinfo(rest)
		if !has {
			return "", "", "", false
		}
		u, pw, _ := strings.Cut(info, ":")
		if d, err := url.PathUnescape(u); err == nil {
			u = d
		}
		if d, err := url.PathUnescape(pw); err == nil {
			pw = d
		}
		return info, u, pw, true
	}
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "", "", "", false
	}
	pw, _ := u.User.Password()
	return u.User.String(), u.User.Username(), pw, true
}
