package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 is the fixed "now" of these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fakeVulns maps "module@version" to the vulnerabilities affecting it and
// counts lookups.
type fakeVulns struct {
	byVersion map[string][]Vuln
	calls     atomic.Int64
}

func (f *fakeVulns) Affecting(module, version string) []Vuln {
	f.calls.Add(1)
	return f.byVersion[module+"@"+version]
}

// fakeLicenses maps "module@version" to a licence; absent means unknown.
type fakeLicenses map[string]License

func (f fakeLicenses) License(module, version string) (License, bool) {
	l, ok := f[module+"@"+version]
	return l, ok
}

func newEngine(t testing.TB, cfg Config, deps Deps) *Engine {
	t.Helper()
	if deps.Now == nil {
		deps.Now = func() time.Time { return t0 }
	}
	e, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

func zipOf(module, version string) Subject {
	return Subject{Module: module, Version: version, File: Zip}
}

// verdicts runs Decide for each subject and compares verdicts and the
// first match's detail.
type decideCase struct {
	name       string
	subject    Subject
	want       Verdict
	wantDetail string // substring of the first match's detail; "" for none
}

func runDecide(t *testing.T, e *Engine, tests []decideCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := e.Decide(tt.subject)
			if d.Verdict != tt.want {
				t.Errorf("Decide(%v %s).Verdict = %v, want %v (matches %+v)", tt.subject, tt.subject.File, d.Verdict, tt.want, d.Matches)
			}
			detail := ""
			if len(d.Matches) > 0 {
				detail = d.Matches[0].Detail
			}
			if tt.wantDetail == "" && detail != "" && tt.want == Allow || !strings.Contains(detail, tt.wantDetail) {
				t.Errorf("Decide(%v %s) first match detail = %q, want it to contain %q", tt.subject, tt.subject.File, detail, tt.wantDetail)
			}
		})
	}
}

func TestDeny(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "no-evil", Kind: KindDeny, Modules: []string{"example.com/evil", "bad.example/*"}},
		{Name: "old-lib", Kind: KindDeny, Modules: []string{"example.com/lib"}, Versions: []string{"<v1.2.0", ">=v1.5.0 <v1.6.0"}},
	}}, Deps{})
	runDecide(t, e, []decideCase{
		{"module zip", zipOf("example.com/evil", "v1.0.0"), Block, "module is denied"},
		{"module list", Subject{Module: "example.com/evil", File: List}, Block, "module is denied"},
		{"module latest", Subject{Module: "example.com/evil", File: Latest}, Block, "module is denied"},
		{"module mod", Subject{Module: "example.com/evil", Version: "v1.0.0", File: Mod}, Block, "module is denied"},
		{"submodule", zipOf("example.com/evil/v2", "v2.0.0"), Block, "module is denied"},
		{"glob", zipOf("bad.example/thing", "v0.1.0"), Block, `pattern "bad.example/*"`},
		{"other module", zipOf("example.com/good", "v1.0.0"), Allow, ""},
		{"range zip", zipOf("example.com/lib", "v1.1.0"), Block, "denied range <v1.2.0, >=v1.5.0 <v1.6.0"},
		{"second range zip", zipOf("example.com/lib", "v1.5.3"), Block, "denied range"},
		{"range mod is served", Subject{Module: "example.com/lib", Version: "v1.1.0", File: Mod}, Allow, ""},
		{"range info is served", Subject{Module: "example.com/lib", Version: "v1.1.0", File: Info}, Allow, ""},
		{"range list is served", Subject{Module: "example.com/lib", File: List}, Allow, ""},
		{"outside range", zipOf("example.com/lib", "v1.3.0"), Allow, ""},
	})
}

func TestAllowListMode(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "approved", Kind: KindAllow, Modules: []string{"corp.example/*", "example.com/lib"}},
		{Name: "lib-v1", Kind: KindAllow, Modules: []string{"example.com/lib", "corp.example/*"}, Versions: []string{"<v2.0.0"}},
	}}, Deps{})
	runDecide(t, e, []decideCase{
		{"listed", zipOf("example.com/lib", "v1.4.0"), Allow, ""},
		{"listed by glob", zipOf("corp.example/tool", "v1.0.0"), Allow, ""},
		{"unlisted zip", zipOf("example.com/other", "v1.0.0"), Block, "module is not on the allow list"},
		{"unlisted mod", Subject{Module: "example.com/other", Version: "v1.0.0", File: Mod}, Block, "not on the allow list"},
		{"unlisted list", Subject{Module: "example.com/other", File: List}, Block, "not on the allow list"},
		{"listed version outside range", zipOf("example.com/lib", "v2.1.0"), Block, "version is not in the allowed range <v2.0.0"},
		{"listed version outside range mod is served", Subject{Module: "example.com/lib", Version: "v2.1.0", File: Mod}, Allow, ""},
	})
}

func TestPin(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "pin-yaml", Kind: KindPin, Modules: []string{"example.com/yaml"}, Versions: []string{"v3.0.1", ">=v3.1.0 <v3.2.0"},
			Reason: "reviewed versions only", Contact: "platform@corp.example"},
	}}, Deps{})
	runDecide(t, e, []decideCase{
		{"exact pin", zipOf("example.com/yaml", "v3.0.1"), Allow, ""},
		{"pinned range", zipOf("example.com/yaml", "v3.1.7"), Allow, ""},
		{"unapproved", zipOf("example.com/yaml", "v3.0.2"), Block, "version is not approved (approved: v3.0.1, >=v3.1.0 <v3.2.0)"},
		{"unapproved mod served", Subject{Module: "example.com/yaml", Version: "v3.0.2", File: Mod}, Allow, ""},
		{"other module", zipOf("example.com/toml", "v0.1.0"), Allow, ""},
	})
	d := e.Decide(zipOf("example.com/yaml", "v3.0.2"))
	want := `example.com/yaml@v3.0.2 blocked by rule "pin-yaml": version is not approved (approved: v3.0.1, >=v3.1.0 <v3.2.0); reviewed versions only; contact platform@corp.example`
	if got := d.Message(); got != want {
		t.Errorf("Message() =\n%s\nwant\n%s", got, want)
	}
}

func TestCooldown(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "cooldown", Kind: KindCooldown, MinAge: 72 * time.Hour, Exempt: []string{"corp.example/*"}},
	}}, Deps{}) // no Ages: the .info time is the age
	young := Subject{Module: "example.com/lib", Version: "v1.2.0", File: Zip, InfoTime: t0.Add(-2 * time.Hour)}
	runDecide(t, e, []decideCase{
		{"young", young, Block, "version is 2h old (by its .info time), younger than the minimum age 72h; allowed from 2026-03-04T10:00:00Z"},
		{"old enough", Subject{Module: "example.com/lib", Version: "v1.1.0", File: Zip, InfoTime: t0.Add(-73 * time.Hour)}, Allow, ""},
		{"young mod is served", Subject{Module: "example.com/lib", Version: "v1.2.0", File: Mod, InfoTime: t0}, Allow, ""},
		{"exempt", Subject{Module: "corp.example/x", Version: "v1.0.0", File: Zip, InfoTime: t0}, Allow, ""},
		{"age unknown is not checked", zipOf("example.com/lib", "v1.3.0"), Allow, ""},
	})
	d := e.Decide(zipOf("example.com/lib", "v1.3.0"))
	if d.Rules[0].Outcome != OutcomeNotChecked {
		t.Errorf("unknown age: outcome %q, want %q", d.Rules[0].Outcome, OutcomeNotChecked)
	}
}

func TestVulnerabilities(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{
		"example.com/x/y@v1.2.3": {{ID: "GO-2024-1234", Aliases: []string{"CVE-2024-0001"}, Fixed: "v1.2.4"}},
		"example.com/x/y@v1.2.4": nil,
		"example.com/two@v1.0.0": {
			{ID: "GO-2024-0001", Fixed: "v1.0.2"},
			{ID: "GO-2024-0002", Fixed: "v1.1.0"},
		},
		"example.com/nofix@v1.0.0": {{ID: "GO-2024-0003"}, {ID: "GO-2024-0004", Fixed: "v1.0.1"}},
		"example.com/acc@v1.0.0":   {{ID: "GO-2025-0001", Aliases: []string{"CVE-2025-1111"}, Fixed: "v1.0.1"}},
		"example.com/exp@v1.0.0":   {{ID: "GO-2025-0002", Fixed: "v1.0.1"}},
	}}
	e := newEngine(t, Config{Rules: []Rule{{
		Name: "no-critical-vulns", Kind: KindVulnerabilities,
		Accept: []Acceptance{
			{ID: "CVE-2025-1111", Until: t0.Add(24 * time.Hour)}, // by alias, still valid
			{ID: "GO-2025-0002", Until: t0.Add(-24 * time.Hour)}, // expired
		},
	}}}, Deps{Vulns: vulns})
	runDecide(t, e, []decideCase{
		{"vulnerable", zipOf("example.com/x/y", "v1.2.3"), Block, "GO-2024-1234"},
		{"fixed", zipOf("example.com/x/y", "v1.2.4"), Allow, ""},
		{"vulnerable mod is served", Subject{Module: "example.com/x/y", Version: "v1.2.3", File: Mod}, Allow, ""},
		{"vulnerable list is served", Subject{Module: "example.com/x/y", File: List}, Allow, ""},
		{"two vulns", zipOf("example.com/two", "v1.0.0"), Block, "GO-2024-0001, GO-2024-0002"},
		{"accepted by alias", zipOf("example.com/acc", "v1.0.0"), Allow, ""},
		{"expired acceptance", zipOf("example.com/exp", "v1.0.0"), Block, "GO-2025-0002"},
	})

	tests := []struct {
		subject Subject
		wantMsg string
	}{
		{zipOf("example.com/x/y", "v1.2.3"), `example.com/x/y@v1.2.3 blocked by rule "no-critical-vulns": GO-2024-1234 (fixed in v1.2.4)`},
		{zipOf("example.com/two", "v1.0.0"), `example.com/two@v1.0.0 blocked by rule "no-critical-vulns": GO-2024-0001, GO-2024-0002 (fixed in v1.1.0)`},
		{zipOf("example.com/nofix", "v1.0.0"), `example.com/nofix@v1.0.0 blocked by rule "no-critical-vulns": GO-2024-0003, GO-2024-0004`},
	}
	for _, tt := range tests {
		d := e.Decide(tt.subject)
		if got := d.Message(); got != tt.wantMsg {
			t.Errorf("Decide(%v).Message() =\n%s\nwant\n%s", tt.subject, got, tt.wantMsg)
		}
	}
	d := e.Decide(zipOf("example.com/acc", "v1.0.0"))
	if got, want := d.Rules[0].Detail, "GO-2025-0001 (CVE-2025-1111) accepted until 2026-03-02T12:00:00Z"; got != want {
		t.Errorf("accepted detail = %q, want %q", got, want)
	}
}

func TestVulnerabilityAcceptanceExpires(t *testing.T) {
	now := t0
	vulns := &fakeVulns{byVersion: map[string][]Vuln{"example.com/a@v1.0.0": {{ID: "GO-2025-0009", Fixed: "v1.0.1"}}}}
	e := newEngine(t, Config{Rules: []Rule{{Name: "vulns", Kind: KindVulnerabilities,
		Accept: []Acceptance{{ID: "GO-2025-0009", Until: t0.Add(time.Hour)}}}}},
		Deps{Vulns: vulns, Now: func() time.Time { return now }})
	s := zipOf("example.com/a", "v1.0.0")
	if v := e.Decide(s).Verdict; v != Allow {
		t.Fatalf("before expiry: verdict %v, want allow", v)
	}
	now = t0.Add(time.Hour) // the Until instant itself is expired
	if v := e.Decide(s).Verdict; v != Block {
		t.Fatalf("at expiry: verdict %v, want block", v)
	}
}

func TestVulnerabilityLookupsAreCached(t *testing.T) {
	now := t0
	vulns := &fakeVulns{byVersion: map[string][]Vuln{}}
	e := newEngine(t, Config{Rules: []Rule{{Name: "vulns", Kind: KindVulnerabilities}}},
		Deps{Vulns: vulns, Now: func() time.Time { return now }})
	for range 5 {
		e.Decide(zipOf("example.com/a", "v1.0.0"))
	}
	if n := vulns.calls.Load(); n != 1 {
		t.Errorf("5 decisions within the TTL made %d lookups, want 1", n)
	}
	now = now.Add(lookupTTL)
	e.Decide(zipOf("example.com/a", "v1.0.0"))
	if n := vulns.calls.Load(); n != 2 {
		t.Errorf("after the TTL: %d lookups, want 2", n)
	}
}

func TestLookupCacheIsBounded(t *testing.T) {
	c := newLookupCache(3, time.Hour)
	lookup := func(string, string) []Vuln { return nil }
	for _, v := range []string{"v1.0.0", "v1.0.1", "v1.0.2", "v1.0.3", "v1.0.4"} {
		c.get("example.com/a", v, t0, lookup)
		if n := len(c.entries); n > 3 {
			t.Fatalf("cache holds %d entries, bound is 3", n)
		}
	}
}

func TestLicenses(t *testing.T) {
	lics := fakeLicenses{
		"example.com/mit@v1.0.0":   {IDs: []string{"MIT"}, Files: []string{"LICENSE"}},
		"example.com/agpl@v1.0.0":  {IDs: []string{"AGPL-3.0"}, Files: []string{"LICENSE"}},
		"example.com/dual@v1.0.0":  {IDs: []string{"AGPL-3.0", "MIT"}, Files: []string{"LICENSE-AGPL", "LICENSE-MIT"}},
		"example.com/none@v1.0.0":  {IDs: []string{}, Files: []string{}},
		"example.com/weird@v1.0.0": {IDs: []string{}, Files: []string{"LICENSE"}, Unrecognized: []string{"LICENSE"}},
		"corp.example/x@v1.0.0":    {IDs: []string{}, Files: []string{}},
	}
	rules := func(unknown Action) Config {
		return Config{Rules: []Rule{{Name: "licences", Kind: KindLicenses, Licenses: []string{"MIT", "Apache-2.0"},
			UnknownLicense: unknown, Exempt: []string{"corp.example"}}}}
	}
	runDecide(t, newEngine(t, rules(""), Deps{Licenses: lics}), []decideCase{
		{"allowed", zipOf("example.com/mit", "v1.0.0"), Allow, ""},
		{"forbidden", zipOf("example.com/agpl", "v1.0.0"), Block, "licence AGPL-3.0 is not allowed (allowed: MIT, Apache-2.0)"},
		{"dual with one forbidden", zipOf("example.com/dual", "v1.0.0"), Block, "licence AGPL-3.0 is not allowed"},
		{"forbidden mod is served", Subject{Module: "example.com/agpl", Version: "v1.0.0", File: Mod}, Allow, ""},
		{"no licence file blocks by default", zipOf("example.com/none", "v1.0.0"), Block, "licence not recognised: no licence file at the module root"},
		{"unrecognised text", zipOf("example.com/weird", "v1.0.0"), Block, "text of LICENSE is not a known licence"},
		{"exempt", zipOf("corp.example/x", "v1.0.0"), Allow, ""},
		{"not known yet", zipOf("example.com/unseen", "v1.0.0"), Allow, ""},
	})
	runDecide(t, newEngine(t, rules(ActionWarn), Deps{Licenses: lics}), []decideCase{
		{"unknown warns", zipOf("example.com/none", "v1.0.0"), Warn, "no licence file"},
		{"forbidden still blocks", zipOf("example.com/agpl", "v1.0.0"), Block, "AGPL-3.0"},
	})
	runDecide(t, newEngine(t, rules(ActionAllow), Deps{Licenses: lics}), []decideCase{
		{"unknown allowed", zipOf("example.com/none", "v1.0.0"), Allow, ""},
	})
}

func TestWarnAndDryRun(t *testing.T) {
	rules := []Rule{
		{Name: "legacy", Kind: KindDeny, Action: ActionWarn, Modules: []string{"example.com/legacy"}, Reason: "moving to example.com/new"},
		{Name: "trial", Kind: KindDeny, DryRun: true, Modules: []string{"example.com/trial"}},
	}
	e := newEngine(t, Config{Rules: rules}, Deps{})

	d := e.Decide(zipOf("example.com/legacy", "v1.0.0"))
	if d.Verdict != Warn || d.Err() != nil {
		t.Errorf("warn rule: verdict %v, Err %v; want warn, nil", d.Verdict, d.Err())
	}
	if got, want := d.Header(), `rule "legacy": module is denied; moving to example.com/new`; got != want {
		t.Errorf("Header() = %q, want %q", got, want)
	}
	if got, want := d.Message(), `example.com/legacy@v1.0.0 allowed with a warning from rule "legacy": module is denied; moving to example.com/new`; got != want {
		t.Errorf("Message() = %q, want %q", got, want)
	}

	d = e.Decide(zipOf("example.com/trial", "v1.0.0"))
	if d.Verdict != Allow || d.Header() != "" || d.Message() != "" {
		t.Errorf("dry-run rule: verdict %v header %q message %q; want allow and nothing shown", d.Verdict, d.Header(), d.Message())
	}
	if len(d.Matches) != 1 || !d.Matches[0].DryRun || d.Matches[0].Action != ActionBlock {
		t.Errorf("dry-run rule: matches %+v, want one dry-run block match", d.Matches)
	}

	global := newEngine(t, Config{DryRun: true, Rules: rules}, Deps{})
	d = global.Decide(zipOf("example.com/legacy", "v1.0.0"))
	if d.Verdict != Allow || d.Header() != "" || len(d.Matches) != 1 || !d.Matches[0].DryRun {
		t.Errorf("global dry run: verdict %v header %q matches %+v; want allow, no header, one dry-run match", d.Verdict, d.Header(), d.Matches)
	}
}

func TestBlockedError(t *testing.T) {
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "no-evil", Kind: KindDeny, Modules: []string{"example.com/evil"}, Contact: "#security\non chat"},
		{Name: "also", Kind: KindDeny, Modules: []string{"example.com/*"}},
		{Name: "and-this", Kind: KindPin, Modules: []string{"example.com/*"}, Versions: []string{"v9.9.9"}},
	}}, Deps{})
	d := e.Decide(zipOf("example.com/evil", "v1.0.0"))
	err := d.Err()
	if !errors.Is(err, ErrBlocked) {
		t.Fatalf("Err() = %v, want an error matching ErrBlocked", err)
	}
	want := `example.com/evil@v1.0.0 blocked by rule "no-evil": module is denied; contact #security on chat (2 more rules also match)`
	if err.Error() != want {
		t.Errorf("Err().Error() =\n%s\nwant\n%s", err, want)
	}
	if ok := e.Decide(zipOf("other.example/x", "v1.0.0")).Err(); ok != nil {
		t.Errorf("allowed decision: Err() = %v, want nil", ok)
	}
	d = e.Decide(Subject{Module: "example.com/evil", File: List})
	if got := d.Message(); !strings.HasPrefix(got, `example.com/evil blocked by rule "no-evil"`) {
		t.Errorf("list Message() = %q, want the module without a version", got)
	}
}

func TestFilterAndLatest(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{"example.com/m@v1.3.0": {{ID: "GO-2026-0001", Fixed: "v1.3.1"}}}}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "vulns", Kind: KindVulnerabilities},
		{Name: "no-v2", Kind: KindDeny, Modules: []string{"example.com/m"}, Versions: []string{">=v1.4.0"}},
		{Name: "trial", Kind: KindDeny, DryRun: true, Modules: []string{"example.com/m"}, Versions: []string{"v1.2.0"}},
		{Name: "evil", Kind: KindDeny, Modules: []string{"example.com/evil"}},
	}}, Deps{Vulns: vulns})
	versions := []string{"v1.0.0", "v1.2.0", "v1.3.0", "v1.3.1-rc.1", "v1.4.0", "v1.5.0-beta"}
	if diff := cmp.Diff([]string{"v1.0.0", "v1.2.0", "v1.3.1-rc.1"}, e.Filter("example.com/m", versions)); diff != "" {
		t.Errorf("Filter (-want +got):\n%s", diff)
	}
	if got := e.Filter("example.com/evil", []string{"v1.0.0"}); len(got) != 0 {
		t.Errorf("Filter of a denied module = %v, want none", got)
	}

	tests := []struct {
		name     string
		module   string
		versions []string
		want     string
		wantOK   bool
	}{
		{"release over newer pre-release", "example.com/m", versions, "v1.2.0", true},
		{"only pre-releases", "example.com/m", []string{"v1.3.1-rc.1", "v1.3.1-rc.2", "v1.3.0"}, "v1.3.1-rc.2", true},
		{"nothing allowed", "example.com/m", []string{"v1.3.0", "v1.4.0"}, "", false},
		{"denied module", "example.com/evil", []string{"v1.0.0"}, "", false},
		{"unrestricted module", "example.com/free", []string{"v0.9.0", "v0.10.0", "v0.10.0-rc.1"}, "v0.10.0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := e.Latest(tt.module, tt.versions)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Latest(%q, %q) = %q, %v; want %q, %v", tt.module, tt.versions, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestDecisionJSON(t *testing.T) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{"example.com/x@v1.0.0": {{ID: "GO-2024-1234", Fixed: "v1.0.1"}}}}
	e := newEngine(t, Config{Rules: []Rule{
		{Name: "no-evil", Kind: KindDeny, Modules: []string{"example.com/evil"}},
		{Name: "vulns", Kind: KindVulnerabilities, Reason: "critical only", Contact: "security@corp.example"},
		{Name: "licences", Kind: KindLicenses, Licenses: []string{"MIT"}},
	}}, Deps{Vulns: vulns})
	data, err := json.Marshal(e.Decide(zipOf("example.com/x", "v1.0.0")))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"module": "example.com/x", "version": "v1.0.0", "file": "zip", "verdict": "block",
		"matches": []any{map[string]any{
			"rule": "vulns", "kind": "vulnerabilities", "action": "block", "reason": "critical only",
			"contact": "security@corp.example", "detail": "GO-2024-1234", "fix": "v1.0.1",
		}},
		"rules": []any{
			map[string]any{"rule": "no-evil", "kind": "deny", "outcome": "no-match"},
			map[string]any{"rule": "vulns", "kind": "vulnerabilities", "outcome": "match", "detail": "GO-2024-1234"},
			map[string]any{"rule": "licences", "kind": "licenses", "outcome": "not-checked", "detail": "no licence detector"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Decision JSON (-want +got):\n%s\n%s", diff, data)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		rules   []Rule
		wantErr string
	}{
		{"no name", []Rule{{Kind: KindDeny, Modules: []string{"a.example"}}}, `rule "": no name`},
		{"unknown kind", []Rule{{Name: "r", Kind: "forbid"}}, `rule "r": unknown kind "forbid"`},
		{"bad action", []Rule{{Name: "r", Kind: KindDeny, Action: "deny", Modules: []string{"a.example"}}}, `unknown action "deny" (want "block" or "warn")`},
		{"deny without modules", []Rule{{Name: "r", Kind: KindDeny}}, "a deny rule needs modules"},
		{"pin without versions", []Rule{{Name: "r", Kind: KindPin, Modules: []string{"a.example"}}}, "a pin rule needs modules and versions"},
		{"bad range", []Rule{{Name: "r", Kind: KindPin, Modules: []string{"a.example"}, Versions: []string{"1.0"}}}, `versions: "1.0" in range "1.0" is not a semantic version`},
		{"bad pattern", []Rule{{Name: "r", Kind: KindDeny, Modules: []string{"a.example/["}}}, "not a valid glob"},
		{"cooldown without age", []Rule{{Name: "r", Kind: KindCooldown}}, "needs a positive minimum age"},
		{"field of another kind", []Rule{{Name: "r", Kind: KindCooldown, MinAge: time.Hour, Modules: []string{"a.example"}}}, "modules does not apply to a cooldown rule"},
		{"licences without allow list", []Rule{{Name: "r", Kind: KindLicenses}}, "needs an allow list"},
		{"bad unknown action", []Rule{{Name: "r", Kind: KindLicenses, Licenses: []string{"MIT"}, UnknownLicense: "ignore"}}, `unknown action "ignore" (want "block", "warn" or "allow")`},
		{"allow action on a rule", []Rule{{Name: "r", Kind: KindDeny, Action: ActionAllow, Modules: []string{"a.example"}}}, `unknown action "allow"`},
		{"acceptance without ID", []Rule{{Name: "r", Kind: KindVulnerabilities, Accept: []Acceptance{{}}}}, "accept[0]: no vulnerability ID"},
		{"duplicate names", []Rule{
			{Name: "r", Kind: KindVulnerabilities},
			{Name: "r", Kind: KindVulnerabilities},
		}, `rule "r": a second rule with this name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Rules: tt.rules}, Deps{})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidRule) {
				t.Errorf("New(%+v) = %v, want an ErrInvalidRule containing %q", tt.rules, err, tt.wantErr)
			}
		})
	}
}

func TestDecideConcurrent(t *testing.T) {
	c := &clock{t: t0}
	ages := openAges(t, t.TempDir(), PublishFirstRequest, c)
	vulns := &fakeVulns{byVersion: map[string][]Vuln{"example.com/m@v1.0.3": {{ID: "GO-2026-0002"}}}}
	e := newEngine(t, benchRules(), Deps{Vulns: vulns, Ages: ages, Licenses: fakeLicenses{}})
	done := make(chan bool)
	for g := range 4 {
		go func() {
			for i := range 200 {
				v := fmt.Sprintf("v1.0.%d", (g+i)%8)
				ages.ObserveList("example.com/m", []string{v}, t0)
				d := e.Decide(zipOf("example.com/m", v))
				if v == "v1.0.3" && d.Verdict != Block {
					t.Errorf("Decide(%s) = %v, want block", v, d.Verdict)
				}
				e.Filter("example.com/m", []string{"v1.0.0", v})
			}
			done <- true
		}()
	}
	for range 4 {
		<-done
	}
}
