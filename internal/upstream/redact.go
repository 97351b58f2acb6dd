package upstream

import (
	"net/url"
	"strings"
)

// redactedUser replaces credentials in URLs that are shown.
const redactedUser = "xxxxx"

// RedactURL returns raw with its credentials hidden, for logs, metrics,
// errors and printed configuration. A password becomes "xxxxx" (as
// url.URL.Redacted does), and so does a user name without a password:
// in a GOPROXY URL a lone user name is usually a token. raw need not be a
// valid URL; anything before the last "@" of what would be its authority is
// hidden then.
func RedactURL(raw string) string {
	if !strings.Contains(raw, "@") {
		return raw
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil && u.Host != "" {
		return redactUser(u)
	}
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		return prefix + redactedUser + rest[at:]
	}
	return raw
}

// redactUser is RedactURL for a parsed URL.
func redactUser(u *url.URL) string {
	if u.User == nil {
		return u.String()
	}
	if _, ok := u.User.Password(); ok {
		return u.Redacted()
	}
	c := *u
	c.User = url.User(redactedUser)
	return c.String()
}

// RedactGOPROXY applies RedactURL to every entry of a GOPROXY list,
// keeping its separators and spelling otherwise.
func RedactGOPROXY(list string) string {
	if !strings.Contains(list, "@") {
		return list
	}
	var b strings.Builder
	for list != "" {
		i := strings.IndexAny(list, ",|")
		if i < 0 {
			b.WriteString(RedactURL(list))
			break
		}
		b.WriteString(RedactURL(list[:i]))
		b.WriteByte(list[i])
		list = list[i+1:]
	}
	return b.String()
}
