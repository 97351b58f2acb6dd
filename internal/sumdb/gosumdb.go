package sumdb

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/storage"
)

// A DB names the checksum database modgate verifies against, as the go
// command's GOSUMDB does.
//
// The zero DB means "off": no database, nothing is verified (see Off).
type DB struct {
	// Name is the database name, the name in its verifier key
	// ("sum.test", or "host/path"). It is also the {name} of /sumdb/{name}/.
	Name string
	// Key is the full verifier key ("name+hash+base64").
	Key string
	// URL is the explicit base URL given after the key, or "" when the
	// database is reached the default way (through the proxies in GOPROXY
	// that support it, then https://{Name}).
	URL string
}

// Off reports whether db is the zero DB, meaning GOSUMDB=off.
func (db DB) Off() bool { return db == DB{} }

// String returns db in GOSUMDB syntax ("off", "key" or "key url").
func (db DB) String() string {
	switch {
	case db.Off():
		return "off"
	case db.URL != "":
		return db.Key + " " + db.URL
	default:
		return db.Key
	}
}

// A knownEntry is a well-known checksum database: its name, verifier key
// and, for an alias, the URL it is reached at.
type knownEntry struct {
	name, key, url string
}

// knownDBs returns the well-known checksum databases, as the go command's own
// table (cmd/go/internal/modfetch/key.go) and its one alias do. This table is
// the only place a database host name is written in modgate.
func knownDBs() []knownEntry {
	const goKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
	return []knownEntry{
		{name: "sum.golang.org", key: goKey},
		// The same database, reachable inside mainland China.
		{name: "sum.golang.google.cn", key: goKey, url: "https://sum.golang.google.cn"},
	}
}

// knownDB returns the verifier key (and, for an alias, the URL) of a
// well-known checksum database by name.
func knownDB(name string) (key, dbURL string, ok bool) {
	for _, e := range knownDBs() {
		if e.name == name {
			return e.key, e.url, true
		}
	}
	return "", "", false
}

// ParseGOSUMDB parses a GOSUMDB value the way the go command does
// (see "go help module-auth"):
//
//	off                 no checksum database: returns the zero DB (DB.Off reports true)
//	name                a database whose key is well known (the go command's table)
//	name+hash+key       a database given by its full verifier key
//	name|key URL        either of the above, reached at an explicit URL
//
// A name without a key that is not well known is an error, as is a key that
// note.NewVerifier rejects or a database name that is not a host[/path]
// usable as a storage and URL path.
func ParseGOSUMDB(value string) (DB, error) {
	fields := strings.Fields(value)
	switch {
	case len(fields) == 0:
		return DB{}, fmt.Errorf("sumdb.gosumdb: empty value: want \"off\", a database name, or name+hash+key, optionally followed by a URL")
	case len(fields) > 2:
		return DB{}, fmt.Errorf("sumdb.gosumdb: %q: too many fields: want a key optionally followed by one URL", value)
	case len(fields) == 1 && fields[0] == "off":
		return DB{}, nil
	}

	key := fields[0]
	var dbURL string
	if k, u, ok := knownDB(key); ok {
		key, dbURL = k, u
	} else if !strings.Contains(key, "+") {
		return DB{}, fmt.Errorf("sumdb.gosumdb: unknown checksum database %q: give its verifier key as name+key", key)
	}
	verifier, err := note.NewVerifier(key)
	if err != nil {
		return DB{}, fmt.Errorf("sumdb.gosumdb: invalid verifier key %q: %w", key, err)
	}
	name := verifier.Name()
	if err := checkDBName(name); err != nil {
		return DB{}, fmt.Errorf("sumdb.gosumdb: %w", err)
	}

	if len(fields) == 2 {
		u, err := url.Parse(fields[1])
		if err != nil {
			return DB{}, fmt.Errorf("sumdb.gosumdb: invalid URL %q: %w", fields[1], err)
		}
		if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
			return DB{}, fmt.Errorf("sumdb.gosumdb: invalid URL %q: want https://host[/path] or http://host[/path]", u.Redacted())
		}
		dbURL = fields[1]
	}
	return DB{Name: name, Key: key, URL: dbURL}, nil
}

// checkDBName reports whether name is acceptable as a checksum database name:
// host[/path], as the go command requires, and usable inside storage keys and
// the state directory ("sumdb/{name}/...").
func checkDBName(name string) error {
	u, err := url.Parse("https://" + name)
	if err != nil || u.Host == "" || strings.HasSuffix(name, "/") || u.RawPath != "" ||
		*u != (url.URL{Scheme: "https", Host: u.Host, Path: u.Path}) ||
		storage.CheckName("sumdb/"+name) != nil {
		return fmt.Errorf("invalid checksum database name %q: must be host[/path]", name)
	}
	return nil
}
