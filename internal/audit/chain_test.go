package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"

	"github.com/modgate/modgate/internal/audit/audittest"
)

// TestMemChain runs the Chain conformance suite against the in-memory
// chain, which also exercises the Log's shared-chain writer and spool.
func TestMemChain(t *testing.T) {
	audittest.RunChain(t, func(t *testing.T) audittest.Backend {
		m := audittest.NewMemChain()
		return audittest.Backend{
			Chain: m,
			EditRow: func(t *testing.T, seq int64, old, new string) {
				if !m.EditRow(seq, old, new) {
					t.Fatalf("no row %d holding %s", seq, old)
				}
			},
			DeleteRow: func(t *testing.T, seq int64) {
				if !m.DeleteRow(seq) {
					t.Fatalf("no row %d", seq)
				}
			},
			Down: func(*testing.T) { m.SetDown(true) },
			Up:   func(*testing.T) { m.SetDown(false) },
		}
	})
}

// TestSharedLostCommitAck: an append that committed but reported a
// failure (the connection broke before the acknowledgement) is spooled,
// and the drain finds it in the chain instead of appending it twice.
func TestSharedLostCommitAck(t *testing.T) {
	m := audittest.NewMemChain()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	spool := t.TempDir()
	l, err := audit.Open(audit.Config{Dir: t.TempDir(), SpoolDir: spool, Chain: m, SigningKey: key, SyncInterval: 20 * time.Millisecond, Replica: "r"})
	if err != nil {
		t.Fatal(err)
	}
	m.LoseAcks(1)
	l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/once"})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		des, _ := os.ReadDir(spool)
		if l.Healthy() == nil && len(des) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spool did not drain (health %v, %d files)", l.Healthy(), len(des))
		}
	}
	l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/twice"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyChain(context.Background(), m, pub, audit.VerifyOptions{})
	if err != nil || rep.Records != 2 {
		t.Fatalf("verify = %v with %d records, want 2 (the first once)\n%s", err, rep.Records, rep)
	}
}

// TestSharedSpoolFull: a spool at its bound drops records with a clear
// error (ErrSpoolFull), counts them, and the chain records the drop once
// it is back.
func TestSharedSpoolFull(t *testing.T) {
	m := audittest.NewMemChain()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	var full atomic.Int64
	dir := t.TempDir()
	l, err := audit.Open(audit.Config{
		Dir: dir, Chain: m, SigningKey: key, SyncInterval: 20 * time.Millisecond, SpoolMaxBytes: 400,
		OnError: func(err error) {
			if errors.Is(err, audit.ErrSpoolFull) && errors.Is(err, audit.ErrDropped) {
				full.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	for i := range 20 {
		l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/m", Version: fmt.Sprintf("v1.0.%d", i)})
		time.Sleep(time.Millisecond) // one batch each, so some fit
	}
	for deadline := time.Now().Add(10 * time.Second); full.Load() == 0 || l.Dropped()+int64(spooledLines(t, filepath.Join(dir, "spool"))) < 20; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d dropped as full, %d dropped in all", full.Load(), l.Dropped())
		}
	}
	m.SetDown(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyChain(context.Background(), m, pub, audit.VerifyOptions{})
	if err != nil {
		t.Fatalf("verify: %v\n%s", err, rep)
	}
	// Drop records may themselves be spooled while more are dropped: their
	// counts add up.
	var kept, noted int64
	audit.QueryChain(context.Background(), m, audit.Filter{}, func(r audit.Record) error {
		if r.Action == audit.ActionDropped {
			var n int64
			fmt.Sscanf(r.Detail, "%d audit records dropped", &n)
			noted += n
		} else {
			kept++
		}
		return nil
	})
	if kept+l.Dropped() != 20 || noted != l.Dropped() || kept == 0 {
		t.Errorf("%d records kept, %d dropped, %d recorded as dropped; want 20 in all, some kept, every drop recorded", kept, l.Dropped(), noted)
	}
}

// spooledLines counts the records waiting in the spool directory dir.
func spooledLines(t *testing.T, dir string) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		data, _ := os.ReadFile(filepath.Join(dir, de.Name()))
		n += strings.Count(string(data), "\n")
	}
	return n
}

// TestSharedDrainInSteps: a spool larger than one drain step empties over
// several ticks, in order, each record once, while new records keep
// coming (and queue behind the spooled ones).
func TestSharedDrainInSteps(t *testing.T) {
	defer audit.SetMaxBatch(2)()
	m := audittest.NewMemChain()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	l, err := audit.Open(audit.Config{Dir: dir, Chain: m, SigningKey: key, SyncInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m.SetDown(true)
	const n = 100 // 50 transactions of 2: more than one tick's 16
	for i := range n {
		l.Write(audit.Record{Result: audit.ResultHit, Bytes: int64(i + 1)})
	}
	for deadline := time.Now().Add(10 * time.Second); spooledLines(t, filepath.Join(dir, "spool")) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("records not spooled")
		}
	}
	m.SetDown(false)
	for i := range 10 {
		l.Write(audit.Record{Result: audit.ResultHit, Bytes: int64(n + i + 1)})
		time.Sleep(5 * time.Millisecond)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyChain(context.Background(), m, pub, audit.VerifyOptions{})
	if err != nil || rep.Records != n+10 {
		t.Fatalf("verify = %v with %d records, want %d\n%s", err, rep.Records, n+10, rep)
	}
	want := int64(1)
	audit.QueryChain(context.Background(), m, audit.Filter{}, func(r audit.Record) error {
		if r.Bytes != want {
			t.Fatalf("record %d where %d was next: out of order", r.Bytes, want)
		}
		want++
		return nil
	})
}
