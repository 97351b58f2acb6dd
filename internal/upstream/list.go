package upstream

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"
)

// An Entry is one element of a GOPROXY list.
type Entry struct {
	// URL is the proxy URL (as written, with "https://" added where the go
	// command adds it, credentials included), or one of the keywords
	// "direct" and "off".
	URL string
	// FallThroughOnAnyError is true when the entry was followed by '|':
	// the next entry is tried after any error. After ',' (or at the end of
	// the list) the next entry is tried only after "not found".
	FallThroughOnAnyError bool
}

// errNoUpstream is wrapped by ParseGOPROXY for a list without entries.
var errNoUpstream = errors.New("no upstream configured")

// ParseGOPROXY parses a GOPROXY list with the go command's rules (see
// "go help goproxy"):
//   - entries are separated by ',' or '|'; the separator after an entry
//     decides how a failure of that entry is handled (see Entry);
//   - spaces around entries and empty entries are ignored;
//   - "direct" and "off" are keywords; like the go command, ParseGOPROXY
//     stops at either of them and ignores any entries after it;
//   - an entry that contains '.', ':' or '/' but neither ":/" nor is an
//     absolute path is a host name, to which "https://" is added;
//   - every other entry must be an http, https or file URL (file URLs as
//     file:///absolute/path and nothing else).
//
// Errors name the offending entry with its password redacted. A list
// without any entry is an error too.
func ParseGOPROXY(list string) ([]Entry, error) {
	var entries []Entry
	rest := list
	for rest != "" {
		var elem string
		fallThrough := false
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			elem, fallThrough, rest = rest[:i], rest[i] == '|', rest[i+1:]
		} else {
			elem, rest = rest, ""
		}
		elem = strings.TrimSpace(elem)
		if elem == "" {
			continue
		}
		if elem == directName || elem == offName {
			entries = append(entries, Entry{URL: elem, FallThroughOnAnyError: fallThrough})
			break
		}
		if strings.ContainsAny(elem, ".:/") && !strings.Contains(elem, ":/") &&
			!filepath.IsAbs(elem) && !path.IsAbs(elem) {
			elem = "https://" + elem
		}
		if !strings.ContainsAny(elem, ".:/") {
			return nil, fmt.Errorf("GOPROXY entry %q: unknown keyword (want direct, off or a URL)", elem)
		}
		if _, shown, err := parseProxyURL(elem); err != nil {
			return nil, fmt.Errorf("GOPROXY entry %q: %w", shown, err)
		}
		entries = append(entries, Entry{URL: elem, FallThroughOnAnyError: fallThrough})
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("GOPROXY list %q has no entries: %w", RedactGOPROXY(list), errNoUpstream)
	}
	return entries, nil
}
