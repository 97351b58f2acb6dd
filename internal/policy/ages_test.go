package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func openAges(t *testing.T, dir string, src PublishTimeSource, c *clock) *Ages {
	t.Helper()
	a, err := OpenAges(dir, src, c.now)
	if err != nil {
		t.Fatalf("OpenAges: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func checkAge(t *testing.T, a *Ages, module, version string, info time.Time, want time.Duration, wantSrc AgeSource) {
	t.Helper()
	got, src := a.Age(module, version, info)
	if got != want || src != wantSrc {
		t.Errorf("Age(%s@%s, info %v) = %v, %v; want %v, %v", module, version, info, got, src, want, wantSrc)
	}
}

func TestAgesFirstSeenSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	a := openAges(t, dir, PublishInfo, c)
	const m = "example.com/m"
	longAgo := t0.Add(-365 * 24 * time.Hour)

	// The first list: its versions were there before modgate watched the
	// module, so they are dated by the publish-time source (.info).
	if err := a.ObserveList(m, []string{"v1.0.0", "v1.1.0"}, t0); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Hour)
	checkAge(t, a, m, "v1.1.0", longAgo, t0.Add(time.Hour).Sub(longAgo), SourceInfo)

	// v1.2.0 appears later, tagged on an old commit: its .info time says
	// a year, but it was first seen an hour ago.
	if err := a.ObserveList(m, []string{"v1.0.0", "v1.1.0", "v1.2.0"}, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(3 * time.Hour)
	checkAge(t, a, m, "v1.2.0", longAgo, 2*time.Hour, SourceFirstSeen)
	// A version of the first list is never re-dated by later lists.
	checkAge(t, a, m, "v1.0.0", longAgo, c.t.Sub(longAgo), SourceInfo)

	// Everything survives a restart.
	a.Close()
	b := openAges(t, dir, PublishInfo, c)
	checkAge(t, b, m, "v1.2.0", longAgo, 2*time.Hour, SourceFirstSeen)
	checkAge(t, b, m, "v1.0.0", time.Time{}, c.t.Sub(longAgo), SourceInfo) // .info time remembered
	if err := b.ObserveList(m, []string{"v1.0.0", "v1.1.0", "v1.2.0", "v1.3.0"}, c.t); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Minute)
	checkAge(t, b, m, "v1.3.0", longAgo, time.Minute, SourceFirstSeen) // still watched after reopen
	checkAge(t, b, m, "v1.2.0", longAgo, 2*time.Hour+time.Minute, SourceFirstSeen)
}

func TestAgesPublishTimeSources(t *testing.T) {
	const m = "example.com/m"
	info := t0.Add(-48 * time.Hour)

	c := &clock{t: t0}
	a := openAges(t, t.TempDir(), PublishInfo, c)
	checkAge(t, a, m, "v1.0.0", time.Time{}, 0, SourceUnknown)
	checkAge(t, a, m, "v1.0.0", info, 48*time.Hour, SourceInfo)

	dir := t.TempDir()
	c = &clock{t: t0}
	s := openAges(t, dir, PublishFirstRequest, c)
	checkAge(t, s, m, "v1.0.0", info, 0, SourceFirstRequest) // .info ignored: strict
	c.t = t0.Add(5 * time.Hour)
	checkAge(t, s, m, "v1.0.0", info, 5*time.Hour, SourceFirstRequest)
	// The first list records the first-request time of its versions.
	if err := s.ObserveList(m, []string{"v0.9.0"}, c.t); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	checkAge(t, s, m, "v0.9.0", info, time.Hour, SourceFirstRequest)
	s.Close()
	s = openAges(t, dir, PublishFirstRequest, c)
	checkAge(t, s, m, "v1.0.0", info, 6*time.Hour, SourceFirstRequest)
}

func TestAgesPartialRecordIsDropped(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: t0}
	a := openAges(t, dir, PublishInfo, c)
	if err := a.ObserveList("example.com/m", nil, t0); err != nil {
		t.Fatal(err)
	}
	if err := a.ObserveList("example.com/m", []string{"v1.0.0"}, t0); err != nil {
		t.Fatal(err)
	}
	a.Close()

	// A crash in the middle of an append leaves half a record.
	f, err := os.OpenFile(filepath.Join(dir, agesFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("S example.com/m v1.1")
	f.Close()

	b := openAges(t, dir, PublishInfo, c)
	checkAge(t, b, "example.com/m", "v1.0.0", time.Time{}, 0, SourceFirstSeen)
	if err := b.ObserveList("example.com/m", []string{"v1.0.0", "v1.1.0"}, t0); err != nil {
		t.Fatal(err)
	}
	b.Close()
	d := openAges(t, dir, PublishInfo, c)
	checkAge(t, d, "example.com/m", "v1.1.0", time.Time{}, 0, SourceFirstSeen)
}

func TestAgesCorruptFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"no header", "W example.com/m 1\n"},
		{"bad record", agesHeader + "X example.com/m v1.0.0 1\n"},
		{"bad time", agesHeader + "S example.com/m v1.0.0 yesterday\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, agesFile), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			a, err := OpenAges(dir, PublishInfo, nil)
			if !errors.Is(err, ErrCorruptAges) {
				if a != nil {
					a.Close()
				}
				t.Errorf("OpenAges on %q = %v, want ErrCorruptAges", tt.content, err)
			}
		})
	}
}

func TestCooldownUsesFirstSeen(t *testing.T) {
	c := &clock{t: t0}
	ages := openAges(t, t.TempDir(), PublishInfo, c)
	e := newEngine(t, Config{Rules: []Rule{{Name: "cooldown", Kind: KindCooldown, MinAge: 72 * time.Hour}}},
		Deps{Ages: ages, Now: c.now})
	const m = "example.com/m"
	ages.ObserveList(m, []string{"v1.0.0"}, t0.Add(-30*24*time.Hour))
	ages.ObserveList(m, []string{"v1.0.0", "v1.1.0"}, t0.Add(-time.Hour))

	// v1.1.0 was tagged on a commit a year old: the .info time does not
	// make it old.
	old := t0.Add(-365 * 24 * time.Hour)
	d := e.Decide(Subject{Module: m, Version: "v1.1.0", File: Zip, InfoTime: old})
	if d.Verdict != Block {
		t.Fatalf("back-dated fresh tag: verdict %v, want block (%+v)", d.Verdict, d.Rules)
	}
	if got, want := d.Matches[0].Detail, "version is 1h old (since it first appeared in the module's version list), younger than the minimum age 72h; allowed from 2026-03-04T11:00:00Z"; got != want {
		t.Errorf("detail = %q, want %q", got, want)
	}
	// Filter hides it without an .info time; v1.0.0 is dated by its
	// .info time, which Ages does not know yet, so it is kept.
	if got := e.Filter(m, []string{"v1.0.0", "v1.1.0"}); len(got) != 1 || got[0] != "v1.0.0" {
		t.Errorf("Filter = %v, want [v1.0.0]", got)
	}
	c.t = t0.Add(72 * time.Hour)
	if v := e.Decide(Subject{Module: m, Version: "v1.1.0", File: Zip, InfoTime: old}).Verdict; v != Allow {
		t.Errorf("after the cooldown: verdict %v, want allow", v)
	}
}
