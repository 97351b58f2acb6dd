package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Other spellings of what a rule refuses: module paths in another case,
// pseudo-versions of a refused commit.

func TestCaseVariantsMatchEveryModuleRule(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{}}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "no-acme", Kind: KindDeny, Modules: []string{"github.com/acme/lib"}},
		{Name: "no-bad", Kind: KindDeny, Modules: []string{"bad.example/*"}},
		{Name: "old-yaml", Kind: KindDeny, Modules: []string{"example.com/yaml"}, Versions: []string{"<v3.0.0"}},
		{Name: "pin-toml", Kind: KindPin, Modules: []string{"example.com/toml"}, Versions: []string{"v1.0.0"}},
	}}, Deps{Vulns: vulns})
	runDecide(t, e, []decideCase{
		{"owner in upper case", zipOf("github.com/Acme/lib", "v1.0.0"), Block, `module is denied (pattern "github.com/acme/lib")`},
		{"host in upper case", Subject{Module: "GitHub.com/acme/lib", File: List}, Block, "module is denied"},
		{"all upper case, below", zipOf("GITHUB.COM/ACME/LIB/V2", "v2.0.0"), Block, "module is denied"},
		{"glob prefix in another case", zipOf("Bad.Example/thing", "v0.1.0"), Block, `pattern "bad.example/*"`},
		{"not a prefix", zipOf("github.com/Acme/library", "v1.0.0"), Allow, ""},
		{"version rule", zipOf("Example.com/YAML", "v2.9.0"), Block, "denied range <v3.0.0"},
		{"pin", zipOf("example.com/TOML", "v1.1.0"), Block, "not approved"},
	})

	d := e.Decide(zipOf("github.com/Acme/lib", "v1.0.0"))
	if got := d.Rules[0].Pattern; got != "github.com/acme/lib" {
		t.Errorf("Decide(github.com/Acme/lib).Rules[0].Pattern = %q, want the rule's pattern", got)
	}
	if got := d.Matches[0].Pattern; got != "github.com/acme/lib" {
		t.Errorf("Decide(github.com/Acme/lib).Matches[0].Pattern = %q, want the rule's pattern", got)
	}
	d = e.Decide(zipOf("Example.com/YAML", "v2.9.0"))
	if got := d.Rules[2].Pattern; got != "example.com/yaml" {
		t.Errorf("Decide(Example.com/YAML).Rules[2].Pattern = %q, want example.com/yaml", got)
	}
}

func TestCaseVariantsAllowListAndExemptions(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "approved", Kind: KindAllow, Modules: []string{"corp.example/*", "github.com/acme/lib"}},
		{Name: "cooldown", Kind: KindCooldown, MinAge: 72 * time.Hour, Exempt: []string{"corp.example/*"}},
		{Name: "licences", Kind: KindLicenses, Licenses: []string{"MIT"}, Exempt: []string{"corp.example/*"}},
	}}, Deps{Licenses: fakeLicenses{}})
	runDecide(t, e, []decideCase{
		// An allow list naming a module approves its other spellings:
		// they name the same repository, so refusing them protects
		// nothing; the deny side above is what must not be bypassed.
		{"allowed in another case", zipOf("GitHub.com/Acme/Lib", "v1.0.0"), Allow, ""},
	})
	d := e.Decide(Subject{Module: "CORP.example/tool", Version: "v1.0.0", File: Zip, InfoTime: t0})
	for _, i := range []int{1, 2} {
		if ev := d.Rules[i]; ev.Outcome != OutcomeNoMatch || !strings.Contains(ev.Detail, "exempt") || ev.Pattern != "corp.example/*" {
			t.Errorf("rule %s for CORP.example/tool: %+v, want exempt by pattern corp.example/*", ev.Rule, ev)
		}
	}
}

func TestAcceptanceIDIgnoresCase(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{
		"example.com/lib@v1.0.0": {{ID: "GO-2024-1234", Aliases: []string{"CVE-2024-0001"}}},
	}}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "vulns", Kind: KindVulnerabilities, Accept: []Acceptance{{ID: "cve-2024-0001"}}},
	}}, Deps{Vulns: vulns})
	runDecide(t, e, []decideCase{
		{"alias in lower case", zipOf("example.com/lib", "v1.0.0"), Allow, ""},
	})
}

func TestAgesIgnoreCase(t *testing.T) {
	c := &clock{t: t0}
	a := openAges(t, t.TempDir(), PublishInfo, c)
	longAgo := t0.Add(-365 * 24 * time.Hour)
	if err := a.ObserveList("github.com/acme/lib", []string{"v1.0.0"}, t0); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Hour)
	if err := a.ObserveList("github.com/acme/lib", []string{"v1.0.0", "v1.1.0"}, c.t); err != nil {
		t.Fatal(err)
	}
	// The first list of the other spelling must not date v1.1.0 by its
	// (back-dated) .info time: it appeared an hour ago.
	if err := a.ObserveList("github.com/Acme/lib", []string{"v1.0.0", "v1.1.0"}, c.t); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(2 * time.Hour)
	checkAge(t, a, "github.com/Acme/lib", "v1.1.0", longAgo, time.Hour, SourceFirstSeen)
}

// fakeTags maps "module@rev" to the tags at that commit and counts calls.
type fakeTags struct {
	tags  map[string][]string
	err   error
	calls atomic.Int64
}

func (f *fakeTags) Tags(module, rev string) ([]string, error) {
	f.calls.Add(1)
	return f.tags[module+"@"+rev], f.err
}

const (
	revDenied  = "aaaaaaaaaaaa" // tagged v1.1.0, in the denied range
	revAllowed = "bbbbbbbbbbbb" // tagged v1.0.0
	revUnknown = "cccccccccccc" // no tag
	revNewer   = "dddddddddddd" // tagged v1.5.0
)

func pseudo(base, rev string) string {
	if base == "" {
		return "v0.0.0-20240101000000-" + rev
	}
	return base + "20240101000000-" + rev
}

func TestPseudoVersionJudgedByItsTags(t *testing.T) {
	tags := &fakeTags{tags: map[string][]string{
		"example.com/lib@" + revDenied:  {"v1.1.0"},
		"example.com/lib@" + revAllowed: {"v1.0.0"},
		"example.com/lib@" + revNewer:   {"v1.5.0"},
		"example.com/old@" + revDenied:  {"v2.0.0+incompatible"},
		"example.com/pin@" + revAllowed: {"v1.0.0"},
		"example.com/pin@" + revNewer:   {"v1.5.0"},
	}}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "bad-range", Kind: KindDeny, Modules: []string{"example.com/lib"}, Versions: []string{">=v1.1.0 <v1.2.0"}},
		{Name: "no-v2", Kind: KindDeny, Modules: []string{"example.com/old"}, Versions: []string{"v2.0.0"}},
		{Name: "pin", Kind: KindPin, Modules: []string{"example.com/pin"}, Versions: []string{"v1.0.0"}},
	}}, Deps{Tags: tags})
	runDecide(t, e, []decideCase{
		{"tag itself", zipOf("example.com/lib", "v1.1.0"), Block, "denied range"},
		{"base-less pseudo of denied tag", zipOf("example.com/lib", pseudo("", revDenied)), Block, "commit aaaaaaaaaaaa, which is tagged v1.1.0: version is in the denied range"},
		{"pseudo with an older base", zipOf("example.com/lib", pseudo("v1.0.1-0.", revDenied)), Block, "tagged v1.1.0"},
		{"pseudo with a pre-release base", zipOf("example.com/lib", pseudo("v1.0.0-rc.1.0.", revDenied)), Block, "tagged v1.1.0"},
		{"pseudo with a newer base", zipOf("example.com/lib", pseudo("v1.4.1-0.", revDenied)), Block, "tagged v1.1.0"},
		{"pseudo in the range itself", zipOf("example.com/lib", pseudo("v1.1.1-0.", revAllowed)), Block, "denied range"},
		{"pseudo of allowed tag", zipOf("example.com/lib", pseudo("", revAllowed)), Allow, ""},
		{"unmapped pseudo", zipOf("example.com/lib", pseudo("", revUnknown)), Block, "commit cccccccccccc matches no known tag"},
		{"unmapped pseudo mod is served", Subject{Module: "example.com/lib", Version: pseudo("", revUnknown), File: Mod}, Allow, ""},
		{"incompatible", zipOf("example.com/old", pseudo("v2.0.1-0.", revDenied)+"+incompatible"), Block, "tagged v2.0.0+incompatible"},
		{"case variant", zipOf("Example.com/Lib", pseudo("", revUnknown)), Block, "matches no known tag"},
		{"pin: pseudo of pinned tag", zipOf("example.com/pin", pseudo("", revAllowed)), Allow, ""},
		{"pin: pseudo of unpinned tag, pinned base", zipOf("example.com/pin", pseudo("v1.0.1-0.", revNewer)), Block, "tagged v1.5.0: version is not approved"},
		{"pin: unmapped", zipOf("example.com/pin", pseudo("", revUnknown)), Block, "matches no known tag"},
		{"no version rule", zipOf("example.com/other", pseudo("", revUnknown)), Allow, ""},
	})

	// A module without a version rule is not looked up.
	before := tags.calls.Load()
	e.Decide(zipOf("example.com/other", pseudo("", revUnknown)))
	if n := tags.calls.Load() - before; n != 0 {
		t.Errorf("Decide for a module no rule names looked tags up %d times, want 0", n)
	}
	// One lookup per decision, however many rules need it.
	before = tags.calls.Load()
	e.Decide(zipOf("example.com/lib", pseudo("", revDenied)))
	if n := tags.calls.Load() - before; n > 1 {
		t.Errorf("Decide looked tags up %d times, want at most 1", n)
	}

	// Lists and latest do not offer a refused pseudo-version.
	list := []string{"v1.0.0", pseudo("", revAllowed), pseudo("", revDenied), pseudo("", revUnknown), "v1.1.0"}
	if diff := cmp.Diff([]string{"v1.0.0", pseudo("", revAllowed)}, e.Filter("example.com/lib", list)); diff != "" {
		t.Errorf("Filter (-want +got):\n%s", diff)
	}
	if got, _ := e.Latest("example.com/lib", []string{pseudo("", revDenied)}); got != "" {
		t.Errorf("Latest of a refused pseudo-version alone = %q, want none", got)
	}
}

func TestUnmappedPseudoVersionSetting(t *testing.T) {
	rules := []Rule{{Name: "bad-range", Kind: KindDeny, Modules: []string{"example.com/lib"}, Versions: []string{">=v1.1.0 <v1.2.0"}}}
	tags := &fakeTags{err: fmt.Errorf("listing: %w", fs.ErrNotExist)}
	for _, tt := range []struct {
		setting Action
		want    Verdict
	}{
		{"", Block}, {ActionBlock, Block}, {ActionWarn, Warn}, {ActionAllow, Allow},
	} {
		t.Run(string(tt.setting), func(t *testing.T) {
			e := newEngine(t, Config{Rules: rules, UnmappedPseudoVersions: tt.setting}, Deps{Tags: tags})
			d := e.Decide(zipOf("example.com/lib", pseudo("", revUnknown)))
			if d.Verdict != tt.want {
				t.Errorf("UnmappedPseudoVersions %q: verdict %v, want %v (%+v)", tt.setting, d.Verdict, tt.want, d.Matches)
			}
			if tt.want != Allow && !strings.Contains(d.Message(), "could not be mapped to a tag") {
				t.Errorf("message %q does not say the commit could not be mapped", d.Message())
			}
			// Even "allow" judges the pseudo-version's own spelling.
			if d := e.Decide(zipOf("example.com/lib", pseudo("v1.1.1-0.", revUnknown))); d.Verdict != Block {
				t.Errorf("UnmappedPseudoVersions %q: pseudo-version in the denied range: %v, want block", tt.setting, d.Verdict)
			}
		})
	}
	if _, err := New(Config{Rules: rules, UnmappedPseudoVersions: "maybe"}, Deps{}); !errors.Is(err, ErrInvalidRule) {
		t.Errorf("New with UnmappedPseudoVersions \"maybe\" = %v, want ErrInvalidRule", err)
	}
	// Without a TagSource every pseudo-version is unmapped.
	e := newEngine(t, Config{Rules: rules}, Deps{})
	if d := e.Decide(zipOf("example.com/lib", pseudo("", revAllowed))); d.Verdict != Block {
		t.Errorf("no TagSource: verdict %v, want block", d.Verdict)
	}
}

func TestVulnerabilitiesJudgeMappedPseudoVersionByTag(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{
		"example.com/lib@v1.1.0":                             {{ID: "GO-2024-0001", Fixed: "v1.1.1"}},
		"example.com/lib@" + pseudo("v1.2.1-0.", revUnknown): {{ID: "GO-2024-0002"}},
	}}
	tags := &fakeTags{tags: map[string][]string{"example.com/lib@" + revDenied: {"v1.1.0"}}}
	e := newEngine(t, Config{Rules: []Rule{{Name: "vulns", Kind: KindVulnerabilities}}}, Deps{Vulns: vulns, Tags: tags})
	runDecide(t, e, []decideCase{
		{"mapped: by its tag", zipOf("example.com/lib", pseudo("", revDenied)), Block, "GO-2024-0001"},
		{"unmapped: by its own version", zipOf("example.com/lib", pseudo("v1.2.1-0.", revUnknown)), Block, "GO-2024-0002"},
		// Vulnerability rules name no versions: an unmapped
		// pseudo-version is judged by its version alone, as OSV does.
		{"unmapped, not affected", zipOf("example.com/lib", pseudo("", revUnknown)), Allow, ""},
	})
}

// fakeInfos is an InfoFiles over a map of "module@version" to .info text.
type fakeInfos struct {
	versions map[string][]string
	infos    map[string]string
	reads    atomic.Int64
}

func (f *fakeInfos) Versions(module string) ([]string, error) {
	v, ok := f.versions[module]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return append([]string(nil), v...), nil
}

func (f *fakeInfos) Info(module, version string) ([]byte, error) {
	f.reads.Add(1)
	s, ok := f.infos[module+"@"+version]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return []byte(s), nil
}

func TestTagIndex(t *testing.T) {
	const (
		h1 = "aaaaaaaaaaaa1111111111111111111111111111"
		h2 = "bbbbbbbbbbbb2222222222222222222222222222"
	)
	info := func(v, hash string) string {
		return fmt.Sprintf(`{"Version":%q,"Time":"2024-01-01T00:00:00Z","Origin":{"VCS":"git","URL":"https://x","Hash":%q,"Ref":"refs/tags/%s"}}`, v, hash, v)
	}
	src := &fakeInfos{
		versions: map[string][]string{"example.com/lib": {"v1.0.0", "v1.1.0", "v1.1.1", "v1.2.0", pseudo("", revUnknown), "not-a-version"}},
		infos: map[string]string{
			"example.com/lib@v1.0.0": info("v1.0.0", h2),
			"example.com/lib@v1.1.0": info("v1.1.0", h1),
			"example.com/lib@v1.1.1": info("v1.1.1", strings.ToUpper(h1)), // a second tag, upper-case hex
			"example.com/lib@v1.2.0": `{"Version":"v1.2.0","Time":"2024-01-01T00:00:00Z"}`,
		},
	}
	x := NewTagIndex(src)
	got, err := x.Tags("example.com/lib", revDenied)
	if err != nil || !cmp.Equal(got, []string{"v1.1.1", "v1.1.0"}) {
		t.Errorf("Tags(lib, %s) = %q, %v; want [v1.1.1 v1.1.0]", revDenied, got, err)
	}
	reads := src.reads.Load()
	got, err = x.Tags("example.com/lib", "BBBBBBBBBBBB")
	if err != nil || !cmp.Equal(got, []string{"v1.0.0"}) {
		t.Errorf("Tags(lib, BBBBBBBBBBBB) = %q, %v; want [v1.0.0]", got, err)
	}
	if n := src.reads.Load() - reads; n != 0 {
		t.Errorf("second lookup read %d .info files, want 0 (cached)", n)
	}
	if got, err := x.Tags("example.com/lib", revUnknown); err != nil || len(got) != 0 {
		t.Errorf("Tags(lib, unknown) = %q, %v; want none", got, err)
	}
	if _, err := x.Tags("example.com/missing", revUnknown); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Tags(missing module) error = %v, want fs.ErrNotExist", err)
	}
	// An unreadable .info is an error only when nothing was found.
	src.versions["example.com/lib"] = append(src.versions["example.com/lib"], "v1.3.0")
	if _, err := x.Tags("example.com/lib", revUnknown); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Tags with an unreadable .info and no match: error %v, want fs.ErrNotExist", err)
	}
	if got, err := x.Tags("example.com/lib", revAllowed); err != nil || !cmp.Equal(got, []string{"v1.0.0"}) {
		t.Errorf("Tags with an unreadable .info and a match = %q, %v; want [v1.0.0]", got, err)
	}
}

func TestRefusedModuleIsNotLookedUp(t *testing.T) {
	tags := &fakeTags{}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "no-evil", Kind: KindDeny, Modules: []string{"example.com/evil"}},
		{Name: "pin", Kind: KindPin, Modules: []string{"example.com/*"}, Versions: []string{"v1.0.0"}},
	}}, Deps{Tags: tags})
	if d := e.Decide(zipOf("example.com/Evil", pseudo("", revUnknown))); d.Verdict != Block {
		t.Errorf("verdict %v, want block", d.Verdict)
	}
	if n := tags.calls.Load(); n != 0 {
		t.Errorf("tags of a module refused as a whole were looked up %d times, want 0", n)
	}
	e.Decide(zipOf("example.com/good", pseudo("", revUnknown)))
	if n := tags.calls.Load(); n != 1 {
		t.Errorf("tags of an allowed module were looked up %d times, want 1", n)
	}
}

func TestCooldownJudgesMappedPseudoVersionByItsTag(t *testing.T) {
	c := &clock{t: t0}
	ages := openAges(t, t.TempDir(), PublishInfo, c)
	const m = "example.com/lib"
	if err := ages.ObserveList(m, []string{"v1.0.0"}, t0.Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ages.ObserveList(m, []string{"v1.0.0", "v1.1.0"}, t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	tags := &fakeTags{tags: map[string][]string{m + "@" + revDenied: {"v1.1.0"}, m + "@" + revAllowed: {"v1.0.0"}}}
	e := newEngine(t, Config{Rules: []Rule{{Name: "cooldown", Kind: KindCooldown, MinAge: 72 * time.Hour}}},
		Deps{Ages: ages, Tags: tags, Now: c.now})
	longAgo := t0.Add(-365 * 24 * time.Hour)
	ages.Age(m, "v1.0.0", longAgo) // as its zip request records it
	fresh := Subject{Module: m, Version: pseudo("", revDenied), File: Zip, InfoTime: longAgo}
	if d := e.Decide(fresh); d.Verdict != Block || !strings.Contains(d.Message(), "tagged v1.1.0: version is 1h old") {
		t.Errorf("back-dated pseudo-version of a fresh tag: %v %q, want block naming the tag's age", d.Verdict, d.Message())
	}
	old := Subject{Module: m, Version: pseudo("", revAllowed), File: Zip, InfoTime: t0.Add(-time.Hour)}
	if d := e.Decide(old); d.Verdict != Allow {
		t.Errorf("pseudo-version of an old tag: %v %q, want allow", d.Verdict, d.Message())
	}
}

// slowInfos is an InfoFiles whose .info reads take a while, counting how
// many run at once.
type slowInfos struct {
	n                 int
	inFlight, maxSeen atomic.Int64
}

func (s *slowInfos) Versions(string) ([]string, error) {
	var vs []string
	for i := range s.n {
		vs = append(vs, fmt.Sprintf("v1.%d.0", i))
	}
	return vs, nil
}

func (s *slowInfos) Info(_, version string) ([]byte, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for {
		m := s.maxSeen.Load()
		if n <= m || s.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(time.Millisecond)
	return []byte(fmt.Sprintf(`{"Version":%q,"Origin":{"Hash":"%040d"}}`, version, 0)), nil
}

func TestTagIndexReadsAFewAtOnce(t *testing.T) {
	src := &slowInfos{n: 200}
	start := time.Now()
	got, err := NewTagIndex(src).Tags("example.com/many", "000000000000")
	if err != nil || len(got) != 200 {
		t.Fatalf("Tags = %d tags, %v; want 200", len(got), err)
	}
	if m := src.maxSeen.Load(); m > parallelInfoReads {
		t.Errorf("%d .info reads ran at once, want at most %d", m, parallelInfoReads)
	}
	t.Logf("200 tags read in %v, at most %d at once", time.Since(start), src.maxSeen.Load())
}
