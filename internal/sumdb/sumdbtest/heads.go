// Package sumdbtest is the conformance suite of sumdb.HeadStore: the
// state files of one modgate and the table replicas share pass the same
// tests.
package sumdbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/sumdb"
)

// RunHeadStore runs the suite. open returns an empty store.
func RunHeadStore(t *testing.T, open func(t *testing.T) sumdb.HeadStore) {
	ctx := context.Background()
	signer := newSigner(t)
	head := func(n int64) []byte { return signer.head(t, n) }

	t.Run("SwapAdvances", func(t *testing.T) {
		s := open(t)
		if got, err := s.ReadHead(ctx, "sum.test"); err != nil || got != nil {
			t.Fatalf("ReadHead of an empty store = %q, %v; want nil", got, err)
		}
		if err := s.SwapHead(ctx, "sum.test", nil, head(10)); err != nil {
			t.Fatalf("first SwapHead: %v", err)
		}
		if err := s.SwapHead(ctx, "sum.test", head(10), head(20)); err != nil {
			t.Fatalf("SwapHead 10 -> 20: %v", err)
		}
		if got, _ := s.ReadHead(ctx, "sum.test"); string(got) != string(head(20)) {
			t.Errorf("ReadHead = %q, want the head of 20", got)
		}
		if got, _ := s.ReadHead(ctx, "other.test"); got != nil {
			t.Errorf("ReadHead of another database = %q, want nil", got)
		}
	})

	t.Run("StaleOldConflicts", func(t *testing.T) {
		s := open(t)
		s.SwapHead(ctx, "sum.test", nil, head(10))
		s.SwapHead(ctx, "sum.test", head(10), head(30))
		// A replica that still believes the head is 10.
		if err := s.SwapHead(ctx, "sum.test", head(10), head(20)); !errors.Is(err, xsumdb.ErrWriteConflict) {
			t.Errorf("SwapHead from a stale head = %v, want ErrWriteConflict", err)
		}
		if err := s.SwapHead(ctx, "sum.test", nil, head(5)); !errors.Is(err, xsumdb.ErrWriteConflict) {
			t.Errorf("SwapHead from nothing over a stored head = %v, want ErrWriteConflict", err)
		}
		if got, _ := s.ReadHead(ctx, "sum.test"); string(got) != string(head(30)) {
			t.Errorf("ReadHead = %q, want the head of 30 still", got)
		}
	})

	t.Run("NeverBackwards", func(t *testing.T) {
		s := open(t)
		s.SwapHead(ctx, "sum.test", nil, head(30))
		if err := s.SwapHead(ctx, "sum.test", head(30), head(29)); !errors.Is(err, sumdb.ErrHeadRegress) {
			t.Errorf("SwapHead to a smaller tree = %v, want ErrHeadRegress", err)
		}
		if got, _ := s.ReadHead(ctx, "sum.test"); string(got) != string(head(30)) {
			t.Errorf("ReadHead = %q, want the head of 30 still", got)
		}
	})

	t.Run("ConcurrentSwapsOneWinner", func(t *testing.T) {
		s := open(t)
		s.SwapHead(ctx, "sum.test", nil, head(10))
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Go(func() {
				if s.SwapHead(ctx, "sum.test", head(10), head(int64(11+i))) == nil {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("8 concurrent swaps from one head: %d won, want 1", wins)
		}
	})
}

type signer struct{ s note.Signer }

func newSigner(t *testing.T) signer {
	skey, _, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return signer{s}
}

// head returns a signed tree head of size n with a made-up hash.
func (s signer) head(t *testing.T, n int64) []byte {
	hash := tlog.Hash(sha256.Sum256(fmt.Appendf(nil, "tree %d", n)))
	msg, err := note.Sign(&note.Note{Text: string(tlog.FormatTree(tlog.Tree{N: n, Hash: hash}))}, s.s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}
