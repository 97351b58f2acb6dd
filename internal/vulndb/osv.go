package vulndb

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// osvEntry is the part of an OSV entry (schema 1.x) that this package reads.
// Other fields (details, references, ecosystem_specific, ...) are kept
// byte-for-byte in the served files but never interpreted.
type osvEntry struct {
	ID        string        `json:"id"`
	Modified  time.Time     `json:"modified"`
	Withdrawn *time.Time    `json:"withdrawn"`
	Aliases   []string      `json:"aliases"`
	Summary   string        `json:"summary"`
	Affected  []osvAffected `json:"affected"`
}

type osvAffected struct {
	Package struct {
		Name      string `json:"name"`
		Ecosystem string `json:"ecosystem"`
	} `json:"package"`
	Ranges []osvRange `json:"ranges"`
}

type osvRange struct {
	Type   string     `json:"type"`
	Events []osvEvent `json:"events"`
}

type osvEvent struct {
	Introduced   string `json:"introduced"`
	Fixed        string `json:"fixed"`
	LastAffected string `json:"last_affected"`
	Limit        string `json:"limit"`
}

// goEcosystem is the only OSV ecosystem this package reads; "stdlib" and
// "toolchain" are pseudo-modules inside it.
const goEcosystem = "Go"

// An entry is a parsed, validated OSV entry, compiled for fast lookups.
type entry struct {
	id        string
	modified  time.Time
	withdrawn bool
	aliases   []string
	summary   string
	// etag is a strong HTTP entity tag for the entry's JSON file, derived
	// from its SHA-256; two files with the same etag have the same bytes.
	etag string
	// modules holds one element per affected Go module, sorted by path.
	modules []*affectedModule
}

// An affectedModule is the set of versions of one module an entry affects.
type affectedModule struct {
	path string
	// all is set when the entry lists the module without any range: OSV
	// then means every version.
	all   bool
	spans []span
	// latestFixed is the highest "fixed" event of the module in OSV form
	// (no "v" prefix), "" when there is none; it is index/modules.json's
	// "fixed" field.
	latestFixed string
}

// A span is one interval of affected versions. Bounds are Go versions with
// the "v" prefix; lo == "" means "from the first version" and hi == ""
// means "no fix". hi is excluded ("fixed") unless hiIncluded
// ("last_affected").
type span struct {
	lo, hi     string
	hiIncluded bool
}

func (s span) contains(v string) bool {
	if s.lo != "" && semver.Compare(v, s.lo) < 0 {
		return false
	}
	if s.hi == "" {
		return true
	}
	c := semver.Compare(v, s.hi)
	return c < 0 || (c == 0 && s.hiIncluded)
}

// union returns the smallest span holding both s and t.
func (s span) union(t span) span {
	u := s
	if t.lo == "" || (u.lo != "" && semver.Compare(t.lo, u.lo) < 0) {
		u.lo = t.lo
	}
	switch {
	case u.hi == "":
	case t.hi == "":
		u.hi, u.hiIncluded = "", false
	default:
		if c := semver.Compare(t.hi, u.hi); c > 0 || (c == 0 && t.hiIncluded) {
			u.hi, u.hiIncluded = t.hi, t.hiIncluded
		}
	}
	return u
}

// hull returns the smallest span holding every version m affects. A module
// with no spans (only non-SEMVER ranges) gets an empty span.
func (m *affectedModule) hull() span {
	if m.all {
		return span{}
	}
	if len(m.spans) == 0 {
		return span{lo: "v0.0.0", hi: "v0.0.0"} // contains nothing
	}
	h := m.spans[0]
	for _, s := range m.spans[1:] {
		h = h.union(s)
	}
	return h
}

// affects reports whether version v (a valid Go semantic version) of the
// module is affected.
func (m *affectedModule) affects(v string) bool {
	if m.all {
		return true
	}
	for _, s := range m.spans {
		if s.contains(v) {
			return true
		}
	}
	return false
}

// fixedAbove returns the lowest "fixed" version above v that is not itself
// affected, "" when there is none.
func (m *affectedModule) fixedAbove(v string) string {
	best := ""
	for _, s := range m.spans {
		if s.hi == "" || s.hiIncluded || semver.Compare(s.hi, v) <= 0 {
			continue
		}
		if best != "" && semver.Compare(s.hi, best) >= 0 {
			continue
		}
		if !m.affects(s.hi) {
			best = s.hi
		}
	}
	return best
}

// parseEntry parses and validates the OSV entry in data. When wantID is not
// empty the entry's id must equal it (the name it was stored or requested
// under). Every error matches ErrCorrupt.
func parseEntry(data []byte, wantID string) (*entry, error) {
	var raw osvEntry
	if err := json.Unmarshal(data, &raw); err != nil {
		if wantID != "" {
			return nil, fmt.Errorf("entry %s: %w: %v", wantID, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if wantID != "" && raw.ID != wantID {
		return nil, fmt.Errorf("entry %s: %w: id is %q", wantID, ErrCorrupt, raw.ID)
	}
	if !validID(raw.ID) {
		return nil, fmt.Errorf("entry id %q: %w: want letters, digits, '-', '_' or '.'", raw.ID, ErrCorrupt)
	}
	sum := sha256.Sum256(data)
	e := &entry{
		id:        raw.ID,
		modified:  raw.Modified,
		withdrawn: raw.Withdrawn != nil,
		aliases:   raw.Aliases,
		summary:   raw.Summary,
		etag:      `"` + hex.EncodeToString(sum[:16]) + `"`,
	}
	for i, a := range raw.Affected {
		if a.Package.Ecosystem != goEcosystem {
			continue
		}
		if a.Package.Name == "" {
			return nil, fmt.Errorf("entry %s: affected[%d]: %w: empty package name", raw.ID, i, ErrCorrupt)
		}
		m := e.module(a.Package.Name)
		if len(a.Ranges) == 0 {
			m.all = true
		}
		for j, r := range a.Ranges {
			if r.Type != "SEMVER" {
				continue
			}
			if err := m.addRange(r); err != nil {
				return nil, fmt.Errorf("entry %s: affected[%d] (%s): ranges[%d]: %w", raw.ID, i, a.Package.Name, j, err)
			}
		}
	}
	slices.SortFunc(e.modules, func(a, b *affectedModule) int { return strings.Compare(a.path, b.path) })
	return e, nil
}

// module returns the entry's affectedModule for path, adding it if needed:
// an entry may list one module more than once (for different packages), and
// a module-level answer is the union.
func (e *entry) module(path string) *affectedModule {
	for _, m := range e.modules {
		if m.path == path {
			return m
		}
	}
	m := &affectedModule{path: path}
	e.modules = append(e.modules, m)
	return m
}

// addRange compiles one SEMVER range into spans, following the OSV
// evaluation rules: events are sorted by version ("0" first), an
// "introduced" opens a span, the next "fixed" (excluded) or
// "last_affected" (included) closes it. An unclosed span has no fix.
func (m *affectedModule) addRange(r osvRange) error {
	type event struct {
		kind string // "introduced", "fixed", "last_affected"
		v    string // "v"-prefixed; "" for introduced "0"
		osv  string // as written
	}
	var events []event
	for i, ev := range r.Events {
		var e event
		switch {
		case ev.Introduced != "":
			e = event{kind: "introduced", osv: ev.Introduced}
		case ev.Fixed != "":
			e = event{kind: "fixed", osv: ev.Fixed}
		case ev.LastAffected != "":
			e = event{kind: "last_affected", osv: ev.LastAffected}
		case ev.Limit != "":
			continue // an upper bound of the search, not of the affected set
		default:
			return fmt.Errorf("events[%d]: %w: no introduced, fixed or last_affected version", i, ErrCorrupt)
		}
		if e.kind == "introduced" && e.osv == "0" {
			events = append(events, e)
			continue
		}
		e.v = "v" + e.osv
		if !semver.IsValid(e.v) {
			return fmt.Errorf("events[%d]: %w: %s version %q is not a semantic version", i, ErrCorrupt, e.kind, e.osv)
		}
		events = append(events, e)
	}
	slices.SortStableFunc(events, func(a, b event) int {
		switch {
		case a.v == "" && b.v == "":
			return 0
		case a.v == "":
			return -1
		case b.v == "":
			return 1
		}
		return semver.Compare(a.v, b.v)
	})
	open, lo := false, ""
	for _, e := range events {
		switch {
		case e.kind == "introduced" && !open:
			open, lo = true, e.v
		case e.kind == "fixed" && open:
			m.spans = append(m.spans, span{lo: lo, hi: e.v})
			open = false
		case e.kind == "last_affected" && open:
			m.spans = append(m.spans, span{lo: lo, hi: e.v, hiIncluded: true})
			open = false
		}
		if e.kind == "fixed" && (m.latestFixed == "" || semver.Compare(e.v, "v"+m.latestFixed) > 0) {
			m.latestFixed = e.osv
		}
	}
	if open {
		m.spans = append(m.spans, span{lo: lo})
	}
	return nil
}

// validID reports whether id is usable as a file name in the served
// layout (ID/<id>.json) and in a URL path without escaping. Real ids look
// like GO-2024-1234.
func validID(id string) bool {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return false
	}
	for _, c := range id {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}
