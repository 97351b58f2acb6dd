package policytest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/policy"
)

// RunAges runs the AgeStore suite. open returns an empty store.
func RunAges(t *testing.T, open func(t *testing.T) policy.AgeStore) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const mod = "example.com/lib"

	t.Run("FirstListThenAppearance", func(t *testing.T) {
		s := open(t)
		if err := s.ObserveList(ctx, mod, []string{"v1.0.0", "v1.1.0"}, t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ObserveList(ctx, mod, []string{"v1.0.0", "v1.1.0", "v1.2.0"}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		// A later list does not move a first-seen time.
		s.ObserveList(ctx, mod, []string{"v1.0.0", "v1.1.0", "v1.2.0"}, t0.Add(2*time.Hour))
		facts, err := s.ModuleFacts(ctx, mod)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"v1.0.0", "v1.1.0"} {
			if f := facts[v]; !f.Listed || !f.FirstSeen.IsZero() || !f.FirstRequest.Equal(t0) {
				t.Errorf("%s of the first list: %+v; want listed, no first-seen time, first request at %v", v, f, t0)
			}
		}
		if f := facts["v1.2.0"]; !f.Listed || !f.FirstSeen.Equal(t0.Add(time.Hour)) {
			t.Errorf("v1.2.0, appeared in the second list: %+v; want first seen at %v", f, t0.Add(time.Hour))
		}
		if other, _ := s.ModuleFacts(ctx, "example.com/other"); len(other) != 0 {
			t.Errorf("facts of another module: %v", other)
		}
	})

	t.Run("RecordFirstWins", func(t *testing.T) {
		s := open(t)
		for _, kind := range []policy.AgeSource{policy.SourceFirstRequest, policy.SourceInfo} {
			got, err := s.Record(ctx, mod, "v2.0.0", kind, t0)
			if err != nil || !got.Equal(t0) {
				t.Fatalf("first Record(%v) = %v, %v; want %v", kind, got, err, t0)
			}
			got, err = s.Record(ctx, mod, "v2.0.0", kind, t0.Add(time.Hour))
			if err != nil || !got.Equal(t0) {
				t.Errorf("second Record(%v) = %v, %v; want the first time %v", kind, got, err, t0)
			}
		}
		f, _ := s.ModuleFacts(ctx, mod)
		if v := f["v2.0.0"]; v.Listed || !v.FirstRequest.Equal(t0) || !v.Info.Equal(t0) {
			t.Errorf("facts after Record: %+v", v)
		}
	})

	t.Run("ConcurrentFirstLists", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				if err := s.ObserveList(ctx, mod, []string{"v1.0.0", "v1.1.0"}, t0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		facts, _ := s.ModuleFacts(ctx, mod)
		for v, f := range facts {
			if !f.FirstSeen.IsZero() {
				t.Errorf("%s got a first-seen time from a concurrent first list: %+v", v, f)
			}
		}
	})

	t.Run("ReplicasAgree", func(t *testing.T) {
		s := open(t)
		now := t0.Add(3 * time.Hour)
		clock := func() time.Time { return now }
		a, err := policy.OpenSharedAges(s, policy.PublishInfo, clock)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := policy.OpenSharedAges(s, policy.PublishInfo, clock)
		a.ObserveList(mod, []string{"v1.0.0"}, t0)
		a.ObserveList(mod, []string{"v1.0.0", "v1.1.0"}, t0.Add(2*time.Hour))
		// Replica B never saw a list, yet dates v1.1.0 by its appearance,
		// not by an old .info time, and with the other spelling too.
		age, src := b.Age("example.com/Lib", "v1.1.0", t0.Add(-1000*time.Hour))
		if src != policy.SourceFirstSeen || age != time.Hour {
			t.Errorf("B: Age of v1.1.0 = %v, %v; want 1h since it first appeared", age, src)
		}
		age, src = b.Age(mod, "v1.0.0", t0.Add(-10*time.Hour))
		if src != policy.SourceInfo || age != 13*time.Hour {
			t.Errorf("B: Age of v1.0.0 = %v, %v; want 13h by its .info time", age, src)
		}
	})
}
