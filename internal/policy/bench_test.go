package policy

import (
	"testing"
	"time"
)

// benchRules is a realistic policy: a few denies, an allow-listed
// internal namespace with pins, a cooldown, vulnerabilities and licences.
func benchRules() Config {
	return Config{Rules: []Rule{
		{Name: "no-evil", Kind: KindDeny, Modules: []string{"example.com/evil", "*.bad.example", "evil.example/*"}},
		{Name: "old-yaml", Kind: KindDeny, Modules: []string{"example.com/yaml"}, Versions: []string{"<v3.0.0"}},
		{Name: "pin-crypto", Kind: KindPin, Modules: []string{"example.com/crypto"}, Versions: []string{">=v0.30.0 <v0.40.0"}},
		{Name: "cooldown", Kind: KindCooldown, MinAge: 72 * time.Hour, Exempt: []string{"corp.example/*"}},
		{Name: "vulns", Kind: KindVulnerabilities, Accept: []Acceptance{{ID: "GO-2020-0001", Until: t0.Add(time.Hour)}}},
		{Name: "licences", Kind: KindLicenses, Licenses: []string{"MIT", "Apache-2.0", "BSD-3-Clause"}, Exempt: []string{"corp.example/*"}},
	}}
}

// BenchmarkDecide measures decisions on the request path.
//
//   - unmatched: a .mod request for a module no rule names (the most
//     common request: the go command reads go.mod files of the whole
//     graph);
//   - zip: a .zip request that goes through every rule, with a
//     vulnerability lookup answered from the engine's cache;
//   - zip-uncached: the same with a different version each time, so the
//     vulnerability source is asked every time.
func BenchmarkDecide(b *testing.B) {
	vulns := &fakeVulns{byVersion: map[string][]Vuln{
		"example.com/lib@v1.2.3": {{ID: "GO-2024-1234", Fixed: "v1.2.4"}},
	}}
	lics := fakeLicenses{"example.com/lib@v1.2.3": {IDs: []string{"MIT"}, Files: []string{"LICENSE"}}}
	e := newEngine(b, benchRules(), Deps{Vulns: vulns, Licenses: lics})
	old := t0.Add(-100 * 24 * time.Hour)

	b.Run("unmatched", func(b *testing.B) {
		s := Subject{Module: "example.com/lib", Version: "v1.2.3", File: Mod}
		b.ReportAllocs()
		for b.Loop() {
			if e.Decide(s).Verdict != Allow {
				b.Fatal("blocked")
			}
		}
	})
	b.Run("zip", func(b *testing.B) {
		s := Subject{Module: "example.com/lib", Version: "v1.2.3", File: Zip, InfoTime: old}
		b.ReportAllocs()
		for b.Loop() {
			if e.Decide(s).Verdict != Block {
				b.Fatal("not blocked")
			}
		}
	})
	b.Run("zip-uncached", func(b *testing.B) {
		e := newEngine(b, benchRules(), Deps{Vulns: vulns, Licenses: lics})
		e.lookups = newLookupCache(1, lookupTTL) // two versions in turn: every lookup misses
		versions := []string{"v1.2.3", "v1.2.4"}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			e.Decide(Subject{Module: "example.com/lib", Version: versions[i%2], File: Zip, InfoTime: old})
			i++
		}
		if n := vulns.calls.Load(); n < int64(b.N) {
			b.Fatalf("%d vulnerability lookups for %d decisions, want one each", n, b.N)
		}
	})
}
