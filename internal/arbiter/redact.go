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
	u, err := url.Parse(dsn)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "[redacted]"
	}
	return u.Scheme + "://" + u.Host
}

// Scrub removes the connection string dsn, its password and its user info
// from msg, for errors that quote what a driver said. Scrub of an empty dsn
// returns msg unchanged.
func Scrub(msg, dsn string) string {
	if dsn == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, dsn, Redacted(dsn))
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return msg
	}
	if info := u.User.String(); info != "" {
		msg = strings.ReplaceAll(msg, info+"@", "")
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "[redacted]")
		if esc := url.QueryEscape(pw); esc != pw {
			msg = strings.ReplaceAll(msg, esc, "[redacted]")
		}
	}
	return msg
}
