// Package ledgertest is the conformance suite of ledger.Backend: every
// backend (the ledger file, PostgreSQL) passes the same tests.
package ledgertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/ledger"
)

// Run runs the suite. open returns a new, empty backend; the suite closes
// it.
func Run(t *testing.T, open func(t *testing.T) ledger.Backend) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 10, 4, 5, 0, time.UTC)

	t.Run("RecordThenLookup", func(t *testing.T) {
		b := open(t)
		defer b.Close()
		const k = "corp.example.com/auth v1.2.0"
		if _, ok, err := b.Lookup(ctx, k); ok || err != nil {
			t.Fatalf("Lookup of an empty backend = %v, %v; want nothing", ok, err)
		}
		rec, created, err := b.Record(ctx, k, ledger.Record{Hash: "h1:first=", At: at})
		if err != nil || !created || rec.Hash != "h1:first=" || !rec.At.Equal(at) {
			t.Fatalf("first Record = %+v, %v, %v; want it stored", rec, created, err)
		}
		rec, created, err = b.Record(ctx, k, ledger.Record{Hash: "h1:second=", At: at.Add(time.Hour)})
		if err != nil || created || rec.Hash != "h1:first=" || !rec.At.Equal(at) {
			t.Errorf("second Record = %+v, %v, %v; want the first record back", rec, created, err)
		}
		got, ok, err := b.Lookup(ctx, k)
		if err != nil || !ok || got.Hash != "h1:first=" || !got.At.Equal(at) || got.At.Location() != time.UTC {
			t.Errorf("Lookup = %+v, %v, %v; want the first record, in UTC", got, ok, err)
		}
		// The go.mod's record is another key.
		if _, ok, _ := b.Lookup(ctx, k+"/go.mod"); ok {
			t.Errorf("Lookup of the go.mod found the zip's record")
		}
		// So is another spelling of the path: keys are exact.
		if _, ok, _ := b.Lookup(ctx, "corp.example.com/Auth v1.2.0"); ok {
			t.Errorf("Lookup of another case found the record")
		}
	})

	t.Run("ConcurrentRecordsOneWinner", func(t *testing.T) {
		b := open(t)
		defer b.Close()
		const k = "corp.example.com/race v1.0.0"
		const n = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created int
		hashes := map[string]bool{}
		var errs []error
		for i := range n {
			wg.Go(func() {
				rec, c, err := b.Record(ctx, k, ledger.Record{Hash: fmt.Sprintf("h1:%d=", i), At: at})
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if c {
					created++
				}
				hashes[rec.Hash] = true
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if created != 1 || len(hashes) != 1 {
			t.Errorf("%d concurrent Records: %d created, hashes returned %v; want one winner that all see", n, created, hashes)
		}
	})

	t.Run("MovedTagRefused", func(t *testing.T) {
		b := open(t)
		l, err := ledger.Open(ledger.Config{Patterns: []string{"corp.example.com"}, Backend: b})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if err := l.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib\n")); err != nil {
			t.Fatalf("first CheckMod: %v", err)
		}
		if err := l.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib\n")); err != nil {
			t.Errorf("same go.mod again: %v", err)
		}
		err = l.CheckMod(ctx, "corp.example.com/lib", "v1.0.0", []byte("module corp.example.com/lib\n\ngo 1.22\n"))
		if !errors.Is(err, ledger.ErrMoved) {
			t.Errorf("changed go.mod: %v, want ErrMoved", err)
		}
		if mod, _, ok := l.Lookup("corp.example.com/lib", "v1.0.0"); !ok || mod == "" {
			t.Errorf("Lookup after CheckMod = %q, %v", mod, ok)
		}
	})
}
