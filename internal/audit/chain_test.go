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
	var kept, notes int64
	audit.QueryChain(context.Background(), m, audit.Filter{}, func(r audit.Record) error {
		if r.Action == audit.ActionDropped {
			notes++
			if !strings.HasPrefix(r.Detail, fmt.Sprint(l.Dropped())+" audit records dropped") {
				t.Errorf("drop record %q, want %d dropped", r.Detail, l.Dropped())
			}
		} else {
			kept++
		}
		return nil
	})
	if kept+l.Dropped() != 20 || notes != 1 || kept == 0 {
		t.Errorf("%d records kept, %d dropped, %d drop records; want 20 in all, some kept, one drop record", kept, l.Dropped(), notes)
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
