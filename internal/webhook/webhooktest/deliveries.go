// Package webhooktest is the conformance suite of webhook.DeliveryStore:
// the deliveries file and the table replicas share pass the same tests.
package webhooktest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/webhook"
)

// RunDeliveries runs the suite. open returns an empty store.
func RunDeliveries(t *testing.T, open func(t *testing.T) webhook.DeliveryStore) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const window = time.Hour

	t.Run("ClaimOnceWithinWindow", func(t *testing.T) {
		s := open(t)
		keys := []string{"body:aa", "id:github:01"}
		if ok, err := s.Claim(ctx, keys, now, window); !ok || err != nil {
			t.Fatalf("first Claim = %v, %v; want it claimed", ok, err)
		}
		// The same delivery, or one sharing either key (a replay with a
		// new delivery ID, or the same ID on a new body), is a duplicate.
		for _, k := range [][]string{keys, {"body:aa", "id:github:02"}, {"body:bb", "id:github:01"}} {
			if ok, err := s.Claim(ctx, k, now.Add(time.Minute), window); ok || err != nil {
				t.Errorf("Claim %v within the window = %v, %v; want a duplicate", k, ok, err)
			}
		}
		// The duplicate claims recorded nothing.
		if ok, _ := s.Claim(ctx, []string{"id:github:02"}, now.Add(2*time.Minute), window); !ok {
			t.Errorf("a key of a refused Claim was recorded")
		}
		// After the window, the delivery is new again.
		if ok, err := s.Claim(ctx, keys, now.Add(window+time.Minute), window); !ok || err != nil {
			t.Errorf("Claim after the window = %v, %v; want it claimed", ok, err)
		}
	})

	t.Run("Release", func(t *testing.T) {
		s := open(t)
		keys := []string{"body:cc"}
		s.Claim(ctx, keys, now, window)
		if err := s.Release(ctx, keys); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Claim(ctx, keys, now.Add(time.Second), window); !ok || err != nil {
			t.Errorf("Claim after Release = %v, %v; want it claimed (the provider's retry)", ok, err)
		}
	})

	t.Run("ConcurrentClaimsOneWinner", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Go(func() {
				ok, err := s.Claim(ctx, []string{"body:dd", fmt.Sprintf("id:github:%d", i)}, now, window)
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("8 concurrent Claims of one body: %d won, want 1", wins)
		}
	})
}
