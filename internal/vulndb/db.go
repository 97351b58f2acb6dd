package vulndb

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"
)

// A Vuln is one vulnerability affecting a module version.
type Vuln struct {
	ID      string   // "GO-2024-1234"
	Aliases []string // CVE and GHSA ids; shared with the DB, do not modify
	Summary string
	// Fixed is the lowest version above the queried one that fixes the
	// vulnerability and is not affected by it again ("v1.2.4"), "" when
	// there is none.
	Fixed string
}

// A DB is an immutable, indexed copy of a vulnerability database. It is safe
// for concurrent use.
type DB struct {
	modified time.Time
	entries  []*entry // sorted by id, withdrawn ones included
	byID     map[string]*entry
	// modules maps a module path, in lower case, to the entries affecting
	// it; withdrawn entries are left out.
	modules map[string]*moduleVulns
}

// moduleVulns lists the entries affecting one module.
type moduleVulns struct {
	// hull is the smallest span holding every affected version of the
	// module: most lookups (a recent version of a module with old
	// vulnerabilities) end with the two comparisons it costs.
	hull  span
	vulns []moduleVuln // sorted by entry id
}

type moduleVuln struct {
	e *entry
	m *affectedModule
}

// newDB indexes entries, which must have distinct ids. modified is the
// database's own modification time (index/db.json).
func newDB(modified time.Time, entries []*entry) *DB {
	slices.SortFunc(entries, func(a, b *entry) int { return strings.Compare(a.id, b.id) })
	db := &DB{
		modified: modified,
		entries:  entries,
		byID:     make(map[string]*entry, len(entries)),
		modules:  make(map[string]*moduleVulns),
	}
	for _, e := range entries {
		db.byID[e.id] = e
		if e.withdrawn {
			continue
		}
		for _, m := range e.modules {
			key := strings.ToLower(m.path)
			mv := db.modules[key]
			if mv == nil {
				mv = &moduleVulns{hull: m.hull()}
				db.modules[key] = mv
			} else {
				mv.hull = mv.hull.union(m.hull())
			}
			mv.vulns = append(mv.vulns, moduleVuln{e: e, m: m})
		}
	}
	return db
}

// Affecting returns the vulnerabilities affecting version of module, sorted
// by ID, or nil. version is a Go module version ("v1.2.3", a pseudo-version,
// "v2.0.0+incompatible"); for the "stdlib" and "toolchain" pseudo-modules it
// is the Go release as a semantic version ("v1.22.3"). An invalid version is
// affected by nothing. Withdrawn entries affect nothing.
//
// The answer is per module version: an entry that lists the vulnerable
// packages (ecosystem_specific.imports) still affects every version in its
// ranges, because a module proxy serves whole modules and cannot tell which
// packages a build imports.
//
// Module paths are compared without regard to case: an entry for
// "github.com/acme/lib" affects "github.com/Acme/lib", the same
// repository to a code host and another spelling to a module proxy.
//
// A nil DB affects nothing. Affecting does not allocate when nothing is
// affected (and module is in lower case).
func (db *DB) Affecting(module, version string) []Vuln {
	if db == nil {
		return nil
	}
	mvs := db.modules[strings.ToLower(module)]
	if mvs == nil || !semver.IsValid(version) || !mvs.hull.contains(version) {
		return nil
	}
	var out []Vuln
	for _, mv := range mvs.vulns {
		if !mv.m.affects(version) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].ID == mv.e.id {
			// One entry naming two spellings of the module (vulns are
			// sorted by entry id, so repeats are adjacent).
			continue
		}
		out = append(out, Vuln{
			ID:      mv.e.id,
			Aliases: mv.e.aliases,
			Summary: mv.e.summary,
			Fixed:   mv.m.fixedAbove(version),
		})
	}
	return out
}

// Len returns the number of entries, withdrawn ones included.
func (db *DB) Len() int {
	if db == nil {
		return 0
	}
	return len(db.entries)
}

// Modified returns the database's modification time, as in index/db.json.
func (db *DB) Modified() time.Time {
	if db == nil {
		return time.Time{}
	}
	return db.modified
}

// The served index files (https://go.dev/security/vuln/database#api).
type (
	dbMeta struct {
		Modified time.Time `json:"modified"`
	}
	moduleMeta struct {
		Path  string          `json:"path"`
		Vulns []moduleVulnRef `json:"vulns"`
	}
	moduleVulnRef struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	vulnMeta struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Aliases  []string  `json:"aliases,omitempty"`
	}
)

// Names of the index files, relative to the database root, without the
// ".json" or ".json.gz" extension.
const (
	dbEndpoint      = "index/db"
	modulesEndpoint = "index/modules"
	vulnsEndpoint   = "index/vulns"
)

// indexFiles returns the JSON of index/db.json, index/modules.json and
// index/vulns.json built from the entries, withdrawn ones included (clients
// such as govulncheck decide what a withdrawn entry means to them).
func (db *DB) indexFiles() (map[string][]byte, error) {
	byPath := make(map[string][]moduleVulnRef)
	vulns := make([]vulnMeta, 0, len(db.entries))
	for _, e := range db.entries {
		vulns = append(vulns, vulnMeta{ID: e.id, Modified: e.modified, Aliases: e.aliases})
		for _, m := range e.modules {
			byPath[m.path] = append(byPath[m.path], moduleVulnRef{ID: e.id, Modified: e.modified, Fixed: m.latestFixed})
		}
	}
	modules := make([]moduleMeta, 0, len(byPath))
	for path, refs := range byPath {
		modules = append(modules, moduleMeta{Path: path, Vulns: refs}) // refs are in id order: entries are
	}
	slices.SortFunc(modules, func(a, b moduleMeta) int { return strings.Compare(a.Path, b.Path) })

	files := make(map[string][]byte, 3)
	for name, v := range map[string]any{
		dbEndpoint:      dbMeta{Modified: db.modified},
		modulesEndpoint: modules,
		vulnsEndpoint:   vulns,
	} {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}
