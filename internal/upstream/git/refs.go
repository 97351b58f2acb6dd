package git

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/modgate/modgate/internal/upstream"
)

// ErrAuthentication reports that a Git server rejected the source's
// credentials (HTTP 401 or 403). Errors matching it also match
// upstream.ErrUnavailable.
var ErrAuthentication = errors.New("authentication rejected")

// refMap maps "HEAD", "refs/heads/NAME" and "refs/tags/NAME" to the commit
// hash they point at, annotated tags already peeled, as the go command
// records them.
type refMap map[string]string

// sum summarises every ref and its hash, to tell whether the repository
// changed since the mirror was last fetched.
func (m refMap) sum() string {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		fmt.Fprintf(h, "%q %s\n", name, m[name])
	}
	return "r1:" + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// keep records one advertised ref in m when the go command would, peeling
// "NAME^{}" onto NAME.
func (m refMap) keep(hash, name string) {
	base, peeled := strings.CutSuffix(name, "^{}")
	if base != "HEAD" && !strings.HasPrefix(base, "refs/heads/") && !strings.HasPrefix(base, "refs/tags/") {
		return
	}
	if base != "HEAD" && !validRefName(base) {
		return // git never advertises such a name; a hostile server might
	}
	if !peeled {
		if _, done := m[base+"^{}"]; done {
			return
		}
		if _, ok := m[base]; ok {
			return
		}
	}
	m[base] = hash
	if peeled {
		m[base+"^{}"] = hash // marks base as peeled; dropped by finish
	}
}

// validRefName reports whether name is a ref name git itself would accept
// (git check-ref-format): no control characters, spaces or any of
// ~^:?*[\, no "..", "@{" or "//", no component starting with "." or
// ending in ".lock", and no trailing "/" or ".".
func validRefName(name string) bool {
	if name == "" || strings.HasSuffix(name, "/") || strings.HasSuffix(name, ".") ||
		strings.Contains(name, "..") || strings.Contains(name, "@{") || strings.Contains(name, "//") {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\", c) >= 0 {
			return false
		}
	}
	for elem := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(elem, ".") || strings.HasSuffix(elem, ".lock") {
			return false
		}
	}
	return true
}

// finish drops the peel markers left by keep.
func (m refMap) finish() refMap {
	for name := range m {
		if strings.HasSuffix(name, "^{}") {
			delete(m, name)
		}
	}
	return m
}

// listRefsHTTP reads the refs of the repository at repoURL (http or https)
// from its smart-HTTP advertisement. It maps the answer to the error
// classes: 401/403 match ErrAuthentication, 404 and 410 fs.ErrNotExist
// ("no such repository"), other statuses and network failures
// upstream.ErrUnavailable, timeouts upstream.ErrTimeout.
func listRefsHTTP(ctx context.Context, client *http.Client, repoURL string, cred *Credentials) (refMap, error) {
	u := strings.TrimSuffix(repoURL, "/") + "/info/refs?service=git-upload-pack"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", upstream.ErrUnavailable, err)
	}
	req.Header.Set("User-Agent", "git/2 modgate")
	req.Header.Set("Accept", "application/x-git-upload-pack-advertisement")
	if cred != nil && cred.Password != "" {
		req.SetBasicAuth(cred.username(), cred.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, netError(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, &classed{class: []error{ErrAuthentication, upstream.ErrUnavailable},
			msg: fmt.Sprintf("authentication rejected (HTTP %d)", resp.StatusCode)}
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return nil, &classed{class: []error{fs.ErrNotExist},
			msg: fmt.Sprintf("no such repository (HTTP %d)", resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return nil, &classed{class: []error{upstream.ErrUnavailable},
			msg: fmt.Sprintf("listing refs: HTTP %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))}
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-advertisement" {
		return nil, &classed{class: []error{upstream.ErrUnavailable},
			msg: fmt.Sprintf("listing refs: answer has Content-Type %q, not a Git smart-HTTP advertisement (a login page? a dumb server?)", ct)}
	}
	refs, err := parseAdvertisement(io.LimitReader(resp.Body, maxAdvertisement))
	if err != nil {
		if ctx.Err() != nil || isTimeout(err) {
			return nil, netError(err)
		}
		return nil, fmt.Errorf("%w: reading ref advertisement: %v", upstream.ErrUnavailable, err)
	}
	return refs, nil
}

// maxAdvertisement bounds a ref advertisement (a repository with a million
// refs advertises about 80 MB).
const maxAdvertisement = 256 << 20

// parseAdvertisement reads a protocol v0/v1 upload-pack advertisement in
// pkt-line format: an optional "# service=git-upload-pack" packet and a
// flush, then "HASH NAME[\0capabilities]" packets, then a flush.
func parseAdvertisement(r io.Reader) (refMap, error) {
	br := bufio.NewReader(r)
	refs := make(refMap)
	first := true
	for {
		line, flush, err := readPkt(br)
		if err != nil {
			return nil, err
		}
		if flush {
			if first {
				continue // after the "# service=" announcement
			}
			return refs.finish(), nil
		}
		if first && strings.HasPrefix(line, "# service=") {
			continue
		}
		first = false
		if msg, ok := strings.CutPrefix(line, "ERR "); ok {
			return nil, fmt.Errorf("server error: %s", msg)
		}
		if line == "version 1" {
			continue
		}
		line, _, _ = strings.Cut(line, "\x00")
		hash, name, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		if !ok || !isHex(hash) || (len(hash) != 40 && len(hash) != 64) {
			return nil, fmt.Errorf("malformed ref line %q", truncate(line, 80))
		}
		if name == "capabilities^{}" { // an empty repository
			continue
		}
		refs.keep(hash, name)
	}
}

// readPkt reads one pkt-line; flush reports a "0000" packet.
func readPkt(r *bufio.Reader) (line string, flush bool, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return "", false, err
	}
	n, err := strconv.ParseUint(string(hdr[:]), 16, 16)
	if err != nil {
		return "", false, fmt.Errorf("malformed pkt-line length %q", hdr[:])
	}
	if n == 0 {
		return "", true, nil
	}
	if n < 4 {
		return "", false, fmt.Errorf("malformed pkt-line length %d", n)
	}
	buf := make([]byte, n-4)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", false, err
	}
	return string(buf), false, nil
}

// parseLsRemote reads the output of "git ls-remote".
func parseLsRemote(out []byte) refMap {
	refs := make(refMap)
	for line := range strings.SplitSeq(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			refs.keep(f[0], f[1])
		}
	}
	return refs.finish()
}

// repoKey normalises the ways a webhook or a user may name one repository
// (https clone URL, web URL, ssh://, scp-like user@host:path, with or
// without ".git", any case) to "host/path".
func repoKey(raw string) string {
	s := strings.TrimSpace(raw)
	var host, p string
	if u, err := url.Parse(s); err == nil && u.Host != "" {
		host, p = u.Hostname(), u.Path
	} else if at, rest, ok := strings.Cut(s, "@"); ok && !strings.Contains(at, "/") {
		host, p, _ = strings.Cut(rest, ":") // user@host:path
	} else if h, rest, ok := strings.Cut(s, ":"); ok && !strings.Contains(h, "/") {
		host, p = h, rest
	} else {
		host, p, _ = strings.Cut(s, "/")
	}
	p = strings.Trim(p, "/")
	p = strings.TrimSuffix(p, ".git")
	return strings.ToLower(host + "/" + p)
}

// isHex reports whether s is non-empty and only lower-case hex digits.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
