package policy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// A PublishTimeSource says how Ages dates a version it never saw appear in
// a list it was already watching.
type PublishTimeSource string

const (
	// PublishInfo uses the Time in the version's .info file: the commit
	// time. It is weak: tagging an old commit back-dates the version.
	PublishInfo PublishTimeSource = "info"
	// PublishFirstRequest uses the time modgate first saw the version at
	// all (in any list, or asked for directly). It is strict: when modgate
	// starts watching a module, every version it already has waits out
	// the cooldown.
	PublishFirstRequest PublishTimeSource = "first-request"
)

// ParsePublishTimeSource parses "info" or "first-request"; empty means
// "info".
func ParsePublishTimeSource(s string) (PublishTimeSource, error) {
	switch p := PublishTimeSource(s); p {
	case "":
		return PublishInfo, nil
	case PublishInfo, PublishFirstRequest:
		return p, nil
	}
	return "", fmt.Errorf("unknown publish time source %q (want %q or %q)", s, PublishInfo, PublishFirstRequest)
}

// An AgeSource says where a version's age came from.
type AgeSource int

// Age sources, see Ages.Age.
const (
	SourceUnknown      AgeSource = iota // no information
	SourceFirstSeen                     // appeared in the list of a watched module
	SourceInfo                          // the .info Time
	SourceFirstRequest                  // first time modgate saw the version
)

// String returns "unknown", "first-seen", "info" or "first-request".
func (s AgeSource) String() string {
	switch s {
	case SourceFirstSeen:
		return "first-seen"
	case SourceInfo:
		return "info"
	case SourceFirstRequest:
		return "first-request"
	}
	return "unknown"
}

// describe says where the age came from, for messages.
func (s AgeSource) describe() string {
	switch s {
	case SourceFirstSeen:
		return "since it first appeared in the module's version list"
	case SourceInfo:
		return "by its .info time"
	case SourceFirstRequest:
		return "since modgate first saw it"
	}
	return "age unknown"
}

// Ages remembers when module versions were first seen, to compute a
// version's age for cooldown rules. It persists to an append-only file in
// its directory, fsynced after every change, so first-seen times survive
// restarts. It is safe for concurrent use.
//
// The file holds one record a line after a header line: "W module time"
// (the module's first list was seen: it is watched from then on), "P
// module version time" (the version was in that first list), "S module
// version time" (the version first appeared in a watched module's list),
// "R module version time" (the version was first seen at all) and "I
// module version time" (the version's .info time); times are Unix
// nanoseconds. A record is written once per fact, so the file grows with
// the number of versions seen, not with traffic.
type Ages struct {
	source PublishTimeSource
	now    func() time.Time

	store  AgeStore             // when set, keeps the facts instead of f (see agestore.go)
	loaded map[string]time.Time // with store: when each module's facts were read

	mu       sync.Mutex
	f        *os.File
	size     int64                // bytes of whole records in f
	watched  map[string]bool      // module paths
	versions map[string]*ageFacts // "module@version"
}

type ageFacts struct {
	listed       bool      // in some list of the module
	firstSeen    time.Time // zero: not seen appearing in a watched list
	firstRequest time.Time // zero: not recorded
	info         time.Time // zero: not recorded
}

const (
	agesFile   = "ages.log"
	agesHeader = "modgate-ages 1\n"
)

// ErrCorruptAges matches the error OpenAges returns for a file it cannot
// read back.
var ErrCorruptAges = errors.New("corrupt ages file")

// OpenAges opens (creating if needed) the store in dir. source says how
// versions not seen appearing in a watched list are dated; now is the
// clock for Age (nil means time.Now). A last record cut short by a crash
// is dropped; any other unreadable line is an error matching
// ErrCorruptAges. Close releases the file.
func OpenAges(dir string, source PublishTimeSource, now func() time.Time) (*Ages, error) {
	if _, err := ParsePublishTimeSource(string(source)); err != nil {
		return nil, err
	}
	if source == "" {
		source = PublishInfo
	}
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("opening ages store: %w", err)
	}
	name := filepath.Join(dir, agesFile)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening ages store: %w", err)
	}
	a := &Ages{source: source, now: now, f: f, watched: make(map[string]bool), versions: make(map[string]*ageFacts)}
	if err := a.load(name); err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

// load replays the file and positions it for appending.
func (a *Ages) load(name string) error {
	data, err := io.ReadAll(a.f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	if len(data) == 0 {
		if _, err := a.f.Write([]byte(agesHeader)); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("writing %s: %w", name, err)
		}
		a.size = int64(len(agesHeader))
		return nil
	}
	// Only whole lines count: a crash during an append leaves a partial
	// last line, which is cut off so the next append starts cleanly.
	whole := data[:bytes.LastIndexByte(data, '\n')+1]
	if !bytes.HasPrefix(whole, []byte(agesHeader)) {
		return fmt.Errorf("%s: %w: not an ages file (no %q header)", name, ErrCorruptAges, strings.TrimSpace(agesHeader))
	}
	sc := bufio.NewScanner(bytes.NewReader(whole[len(agesHeader):]))
	sc.Buffer(nil, 1<<20)
	for line := 2; sc.Scan(); line++ {
		if err := a.apply(sc.Text()); err != nil {
			return fmt.Errorf("%s:%d: %w: %v", name, line, ErrCorruptAges, err)
		}
	}
	a.size = int64(len(whole))
	if len(whole) < len(data) {
		if err := a.f.Truncate(a.size); err != nil {
			return fmt.Errorf("truncating partial record in %s: %w", name, err)
		}
	}
	if _, err := a.f.Seek(a.size, io.SeekStart); err != nil {
		return fmt.Errorf("seeking in %s: %w", name, err)
	}
	return nil
}

// apply applies one record to the in-memory state.
func (a *Ages) apply(line string) error {
	f := strings.Fields(line)
	if len(f) < 3 {
		return fmt.Errorf("record %q has too few fields", line)
	}
	ns, err := strconv.ParseInt(f[len(f)-1], 10, 64)
	if err != nil {
		return fmt.Errorf("record %q: bad time", line)
	}
	t := time.Unix(0, ns)
	f[1] = strings.ToLower(f[1]) // records written before modules were folded
	if f[0] == "W" && len(f) == 3 {
		a.watched[f[1]] = true
		return nil
	}
	if len(f) != 4 {
		return fmt.Errorf("record %q has the wrong number of fields", line)
	}
	facts := a.facts(f[1], f[2])
	switch f[0] {
	case "P":
		facts.listed = true
	case "S":
		facts.listed = true
		facts.firstSeen = t
	case "R":
		facts.firstRequest = t
	case "I":
		facts.info = t
	default:
		return fmt.Errorf("record %q has unknown type %q", line, f[0])
	}
	return nil
}

// facts returns the entry for module@version, creating it.
func (a *Ages) facts(module, version string) *ageFacts {
	key := module + "@" + version
	f := a.versions[key]
	if f == nil {
		f = new(ageFacts)
		a.versions[key] = f
	}
	return f
}

// append writes records (each ending in "\n") and fsyncs. On failure the
// file is cut back to its previous length, so a half-written record never
// stays, and the caller leaves its in-memory state unchanged, so the same
// facts are written again next time. Called with mu held.
func (a *Ages) append(records string) error {
	if records == "" {
		return nil
	}
	if _, err := a.f.WriteString(records); err != nil {
		return a.rollback(err)
	}
	if err := a.f.Sync(); err != nil {
		return a.rollback(err)
	}
	a.size += int64(len(records))
	return nil
}

func (a *Ages) rollback(err error) error {
	a.f.Truncate(a.size)
	a.f.Seek(a.size, io.SeekStart)
	return fmt.Errorf("recording version ages: %w", err)
}

// usable reports whether s can be written as one field of a record.
func usable(s string) bool {
	return s != "" && !strings.ContainsFunc(s, unicode.IsSpace)
}

// ObserveList records a list answer for module seen at now. When the
// module was already watched, each version not listed before gets now as
// its first-seen time: it just appeared. When this is the module's first
// list, its versions are recorded as present when first watched, with no
// first-seen time of their own (their age comes from the publish-time
// source); the module is watched from then on. Every version not seen
// before also gets now as its first-request time. Versions that are empty
// or contain spaces are ignored. The error reports a failure to persist;
// nothing is remembered then, so the next call records it again.
func (a *Ages) ObserveList(module string, versions []string, now time.Time) error {
	if !usable(module) {
		return nil
	}
	module = strings.ToLower(module) // see Age
	if a.store != nil {
		return a.observeStore(module, versions, now)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t := time.Unix(0, now.UnixNano()) // as it reads back from the file
	watched := a.watched[module]
	var b strings.Builder
	if !watched {
		fmt.Fprintf(&b, "W %s %d\n", module, t.UnixNano())
	}
	type change struct {
		version         string
		listed, request bool
	}
	var changes []change
	for _, v := range versions {
		f := a.versions[module+"@"+v]
		c := change{version: v, listed: f == nil || !f.listed, request: f == nil || f.firstRequest.IsZero()}
		if !usable(v) || !c.listed && !c.request {
			continue
		}
		if c.listed {
			kind := "P" // present when the module was first watched
			if watched {
				kind = "S" // appeared in a watched list
			}
			fmt.Fprintf(&b, "%s %s %s %d\n", kind, module, v, t.UnixNano())
		}
		if c.request {
			fmt.Fprintf(&b, "R %s %s %d\n", module, v, t.UnixNano())
		}
		changes = append(changes, c)
	}
	if err := a.append(b.String()); err != nil {
		return err
	}
	a.watched[module] = true
	for _, c := range changes {
		f := a.facts(module, c.version)
		if c.listed {
			f.listed = true
			if watched {
				f.firstSeen = t
			}
		}
		if c.request {
			f.firstRequest = t
		}
	}
	return nil
}

// Age returns how old module@version is and where that came from (module
// paths are compared without regard to case):
//
//  1. the time it first appeared in the list of a module modgate was
//     already watching (SourceFirstSeen), when known;
//  2. otherwise, with PublishInfo, infoTime (the .info Time) when not
//     zero, else the .info time recorded by an earlier call
//     (SourceInfo), else SourceUnknown;
//  3. otherwise, with PublishFirstRequest, the time modgate first saw the
//     version, recorded now if this is the first time (SourceFirstRequest).
//
// Age records what it learns (a .info time, a first-request time); a
// failure to persist is not reported here and the write is retried on the
// next call.
func (a *Ages) Age(module, version string, infoTime time.Time) (time.Duration, AgeSource) {
	// Spellings of a module path that differ only in case are one module
	// (code hosts serve both): a tag that appeared in the list of
	// "github.com/acme/lib" is as young under "github.com/Acme/lib",
	// whose first list would otherwise date it by its .info time.
	module = strings.ToLower(module)
	now := a.now()
	if a.store != nil && usable(module) {
		a.refresh(module, version, now)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f := a.versions[module+"@"+version]
	if f != nil && !f.firstSeen.IsZero() {
		return now.Sub(f.firstSeen), SourceFirstSeen
	}
	if !usable(module) || !usable(version) {
		return 0, SourceUnknown
	}
	switch a.source {
	case PublishFirstRequest:
		if f != nil && !f.firstRequest.IsZero() {
			return now.Sub(f.firstRequest), SourceFirstRequest
		}
		t := time.Unix(0, now.UnixNano())
		if a.store != nil {
			if got, ok := a.recordStoreLocked(module, version, SourceFirstRequest, t); ok {
				t = got
			}
		} else if a.append(fmt.Sprintf("R %s %s %d\n", module, version, t.UnixNano())) == nil {
			a.facts(module, version).firstRequest = t
		}
		return now.Sub(t), SourceFirstRequest
	default:
		if infoTime.IsZero() {
			if f == nil || f.info.IsZero() {
				return 0, SourceUnknown
			}
			return now.Sub(f.info), SourceInfo
		}
		if f == nil || f.info.IsZero() {
			t := time.Unix(0, infoTime.UnixNano())
			if a.store != nil {
				a.recordStoreLocked(module, version, SourceInfo, t)
			} else if a.append(fmt.Sprintf("I %s %s %d\n", module, version, t.UnixNano())) == nil {
				a.facts(module, version).info = t
			}
		}
		return now.Sub(infoTime), SourceInfo
	}
}

// Close closes the file. The Ages must not be used afterwards.
func (a *Ages) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil // a store's owner closes it
	}
	return a.f.Close()
}
