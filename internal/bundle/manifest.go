// Package bundle moves a modgate's content across an air gap: Export writes
// the module files of a selection, the checksum-database lookups and tiles
// that prove them, and the vulnerability database copy into one tar file
// with a signed manifest; Import checks the signature and every byte before
// it stores anything. It also seeds a store from a developer's module cache
// (SeedModCache), verifying every file against the checksum database, online
// or through the tiles a bundle carries.
//
// # Bundle layout
//
// A bundle is an uncompressed tar file (one file to carry, written and read
// as a stream; module zips are compressed already):
//
//	modules/<store key>     module files and checksum-database files under
//	                        their storage keys, which are their GOPROXY
//	                        protocol paths (example.com/!corp/lib/@v/v1.0.0.zip,
//	                        sumdb/sum.example.org/lookup/...)
//	vulndb/<path>           the vulnerability database copy (index/db.json, ...)
//	manifest                the signed manifest, always the last entry
//
// The manifest is a golang.org/x/mod/sumdb/note signed with an ed25519 key
// the operator holds (the same kind of key the checksum database and the
// audit checkpoints use). Its text lists every other entry:
//
//	modgate bundle v1
//	created 2026-01-02T15:04:05Z
//	file <sha256 hex> <size> <name> [h1:...]
//
// with the go.sum hash (h1:) of every .mod and .zip. A copy of the manifest
// is written beside the bundle (BUNDLE.manifest) for `export --since`.
//
// # What it does not do
//
// It does not decide what a site may use (the importing modgate's policy
// applies when files are served) and does not talk to upstreams except, for
// SeedModCache, to the checksum database.
package bundle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// ErrRejected matches every reason Import refuses a bundle: a bad
// signature, a file whose bytes or hash differ from the manifest, a file
// the manifest does not list or one it lists that is missing.
var ErrRejected = errors.New("bundle rejected")

const (
	formatLine   = "modgate bundle v1"
	manifestName = "manifest"
)

// An Entry is one file of a bundle.
type Entry struct {
	Name   string // tar name: "modules/<key>" or "vulndb/<path>"
	Size   int64
	SHA256 string // hex
	H1     string // go.sum hash of a .mod or .zip; "" otherwise
}

// A Manifest lists a bundle's files.
type Manifest struct {
	Created time.Time
	Entries []Entry
}

// text returns the manifest's note text.
func (m *Manifest) text() string {
	var b strings.Builder
	b.WriteString(formatLine + "\n")
	fmt.Fprintf(&b, "created %s\n", m.Created.UTC().Format(time.RFC3339))
	entries := append([]Entry(nil), m.Entries...)
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name < entries[j].Name })
	for _, e := range entries {
		fmt.Fprintf(&b, "file %s %d %s", e.SHA256, e.Size, e.Name)
		if e.H1 != "" {
			b.WriteString(" " + e.H1)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// Sign returns the signed manifest.
func (m *Manifest) Sign(signer note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: m.text()}, signer)
}

// OpenManifest checks a signed manifest against verifier and parses it.
// A nil verifier skips the signature (for --since, which only reads what
// a previous bundle held).
func OpenManifest(data []byte, verifier note.Verifier) (*Manifest, error) {
	var text string
	if verifier != nil {
		n, err := note.Open(data, note.VerifierList(verifier))
		if err != nil {
			return nil, fmt.Errorf("%w: manifest signature: %v", ErrRejected, err)
		}
		text = n.Text
	} else {
		// The text ends at the blank line before the signatures.
		t, _, ok := bytes.Cut(data, []byte("\n\n"))
		if !ok {
			return nil, fmt.Errorf("%w: manifest is not a signed note", ErrRejected)
		}
		text = string(t) + "\n"
	}
	return parseManifest(text)
}

func parseManifest(text string) (*Manifest, error) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	m := &Manifest{}
	bad := func(n int, why string) error {
		return fmt.Errorf("%w: manifest line %d: %s", ErrRejected, n, why)
	}
	seen := make(map[string]bool)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case n == 1:
			if line != formatLine {
				return nil, bad(n, fmt.Sprintf("format %q, want %q", line, formatLine))
			}
		case strings.HasPrefix(line, "created "):
			t, err := time.Parse(time.RFC3339, strings.TrimPrefix(line, "created "))
			if err != nil {
				return nil, bad(n, err.Error())
			}
			m.Created = t
		case strings.HasPrefix(line, "file "):
			f := strings.Fields(line)
			if len(f) != 4 && len(f) != 5 {
				return nil, bad(n, "want file SHA256 SIZE NAME [H1]")
			}
			size, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || size < 0 || len(f[1]) != 64 {
				return nil, bad(n, "bad size or hash")
			}
			e := Entry{SHA256: f[1], Size: size, Name: f[3]}
			if len(f) == 5 {
				e.H1 = f[4]
			}
			if err := checkEntryName(e.Name); err != nil {
				return nil, bad(n, err.Error())
			}
			if seen[e.Name] {
				return nil, bad(n, "duplicate "+e.Name)
			}
			seen[e.Name] = true
			m.Entries = append(m.Entries, e)
		default:
			return nil, bad(n, "unknown line")
		}
	}
	return m, sc.Err()
}
