package policy

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// An AgeStore keeps the first-seen facts of module versions where every
// replica reads and adds to them (package state/postgres), in place of
// the ages file, so that a version's age for the cooldown rule does not
// depend on which replica saw it appear. Module paths are lower-case.
// Every fact is written once: the first writer wins.
//
// Implementations must be safe for concurrent use by several processes.
type AgeStore interface {
	// ObserveList records a version list of module seen at now, as
	// Ages.ObserveList describes, atomically: of two replicas seeing the
	// module's first list at once, one records it as the first and the
	// other as a later list of the same versions.
	ObserveList(ctx context.Context, module string, versions []string, now time.Time) error
	// ModuleFacts returns what is recorded of every version of module.
	ModuleFacts(ctx context.Context, module string) (map[string]VersionAge, error)
	// Record records t as the first-request time (SourceFirstRequest) or
	// the .info time (SourceInfo) of module@version unless one is
	// recorded, and returns the recorded one.
	Record(ctx context.Context, module, version string, kind AgeSource, t time.Time) (time.Time, error)
}

// VersionAge is what is recorded of one version; zero times are unknown.
type VersionAge struct {
	Listed       bool      // in some list of the module
	FirstSeen    time.Time // appeared in the list of a watched module
	FirstRequest time.Time
	Info         time.Time
}

// ageStoreTimeout bounds one AgeStore operation; ageReload is how long
// facts read from the store are used before reading them again (a
// version's first-seen time never changes once set, so only versions
// still without one are read again).
const (
	ageStoreTimeout = 2 * time.Second
	ageReload       = time.Second
)

// OpenSharedAges returns Ages that keep their facts in store, with the
// memory of OpenAges as a cache.
func OpenSharedAges(store AgeStore, source PublishTimeSource, now func() time.Time) (*Ages, error) {
	if _, err := ParsePublishTimeSource(string(source)); err != nil {
		return nil, err
	}
	if source == "" {
		source = PublishInfo
	}
	if now == nil {
		now = time.Now
	}
	return &Ages{source: source, now: now, store: store, loaded: make(map[string]time.Time),
		watched: make(map[string]bool), versions: make(map[string]*ageFacts)}, nil
}

// observeStore is ObserveList with a store.
func (a *Ages) observeStore(module string, versions []string, now time.Time) error {
	var usableVersions []string
	for _, v := range versions {
		if usable(v) {
			usableVersions = append(usableVersions, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ageStoreTimeout)
	defer cancel()
	if err := a.store.ObserveList(ctx, module, usableVersions, time.Unix(0, now.UnixNano())); err != nil {
		return fmt.Errorf("recording version ages: %w", err)
	}
	a.mu.Lock()
	delete(a.loaded, module) // read again at the next Age
	a.mu.Unlock()
	return nil
}

// refresh reads the facts of module from the store, unless version's
// first-seen time is known (it never changes) or the module's facts were
// read (or tried) within ageReload. The read runs without a.mu held, so a
// slow store does not hold up other modules. A store that cannot be read
// leaves what is known: the facts only grow.
func (a *Ages) refresh(module, version string, now time.Time) {
	a.mu.Lock()
	f := a.versions[module+"@"+version]
	at, ok := a.loaded[module]
	if f != nil && !f.firstSeen.IsZero() || ok && now.Sub(at) < ageReload && !now.Before(at) {
		a.mu.Unlock()
		return
	}
	a.loaded[module] = now // one reader at a time per module and period
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), ageStoreTimeout)
	defer cancel()
	facts, err := a.store.ModuleFacts(ctx, module)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.versions) > 4*licenseMemSize {
		clear(a.versions) // a cache: the store has it all
		clear(a.loaded)
		a.loaded[module] = now
	}
	for v, f := range facts {
		a.versions[module+"@"+v] = &ageFacts{listed: f.Listed, firstSeen: f.FirstSeen, firstRequest: f.FirstRequest, info: f.Info}
	}
}

// recordStoreLocked records a first-request or .info time in the store
// and the memory, and returns the recorded one. a.mu must be held.
func (a *Ages) recordStoreLocked(module, version string, kind AgeSource, t time.Time) (time.Time, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), ageStoreTimeout)
	defer cancel()
	got, err := a.store.Record(ctx, module, version, kind, t)
	if err != nil {
		return time.Time{}, false
	}
	f := a.facts(module, version)
	if kind == SourceFirstRequest {
		f.firstRequest = got
	} else {
		f.info = got
	}
	return got, true
}

// OpenFileAgeStore opens the ages file in dir as an AgeStore: what
// OpenAges uses, for the conformance suite. Close it with the returned
// function.
func OpenFileAgeStore(dir string) (AgeStore, func() error, error) {
	a, err := OpenAges(dir, PublishInfo, nil)
	if err != nil {
		return nil, nil, err
	}
	return fileAges{a}, a.Close, nil
}

type fileAges struct{ a *Ages }

func (f fileAges) ObserveList(_ context.Context, module string, versions []string, now time.Time) error {
	return f.a.ObserveList(module, versions, now)
}

func (f fileAges) ModuleFacts(_ context.Context, module string) (map[string]VersionAge, error) {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	out := make(map[string]VersionAge)
	for k, v := range f.a.versions {
		if m, ver, ok := strings.Cut(k, "@"); ok && m == module {
			out[ver] = VersionAge{Listed: v.listed, FirstSeen: v.firstSeen, FirstRequest: v.firstRequest, Info: v.info}
		}
	}
	return out, nil
}

func (f fileAges) Record(_ context.Context, module, version string, kind AgeSource, t time.Time) (time.Time, error) {
	f.a.mu.Lock()
	defer f.a.mu.Unlock()
	fa := f.a.versions[module+"@"+version]
	t = time.Unix(0, t.UnixNano())
	switch kind {
	case SourceFirstRequest:
		if fa != nil && !fa.firstRequest.IsZero() {
			return fa.firstRequest, nil
		}
		if err := f.a.append(fmt.Sprintf("R %s %s %d\n", module, version, t.UnixNano())); err != nil {
			return time.Time{}, err
		}
		f.a.facts(module, version).firstRequest = t
	case SourceInfo:
		if fa != nil && !fa.info.IsZero() {
			return fa.info, nil
		}
		if err := f.a.append(fmt.Sprintf("I %s %s %d\n", module, version, t.UnixNano())); err != nil {
			return time.Time{}, err
		}
		f.a.facts(module, version).info = t
	default:
		return time.Time{}, fmt.Errorf("ages: cannot record a time of kind %v", kind)
	}
	return t, nil
}
