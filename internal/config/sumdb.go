package config

import (
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/internal/upstream"
)

// checkGOSUMDB checks that s is plausible GOSUMDB syntax: "off", or a key
// optionally followed by a space and an http or https URL, where the key is
// a full verifier key ("name+hash+base64key", checked with
// note.NewVerifier) or a bare database name (host[/path]).
//
// A bare name is only plausible here: whether modgate knows its key is
// decided by package sumdb, which owns the table of well-known databases,
// when the server is built. Keeping the table in one place means config
// need not import sumdb.
func checkGOSUMDB(s string) error {
	f := strings.Fields(s)
	switch {
	case len(f) == 0:
		return fmt.Errorf(`empty; name a checksum database or write "off"`)
	case len(f) == 1 && f[0] == "off":
		return nil
	case len(f) > 2:
		return fmt.Errorf("%q has %d fields; want a key, optionally followed by one URL", redactGOSUMDB(s), len(f))
	}
	name := f[0]
	if strings.Contains(name, "+") {
		v, err := note.NewVerifier(name)
		if err != nil {
			return fmt.Errorf("%q is not a valid verifier key (%v); write it as name+hash+key", name, err)
		}
		name = v.Name()
	}
	// The name is used as a URL host and path and as a storage key prefix.
	u, err := url.Parse("https://" + name)
	if err != nil || u.Host == "" || strings.HasSuffix(name, "/") || u.RawPath != "" ||
		*u != (url.URL{Scheme: "https", Host: u.Host, Path: u.Path}) {
		return fmt.Errorf("database name %q is not host[/path]", name)
	}
	if len(f) == 2 {
		u, err := url.Parse(f[1])
		switch {
		case err != nil:
			return fmt.Errorf("URL %q: %v", upstream.RedactURL(f[1]), unwrapURLError(err))
		case u.Scheme != "https" && u.Scheme != "http":
			return fmt.Errorf("URL %q: scheme %q not supported (want https or http)", u.Redacted(), u.Scheme)
		case u.Host == "":
			return fmt.Errorf("URL %q has no host", u.Redacted())
		}
	}
	return nil
}
