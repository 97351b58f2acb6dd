package audittest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// A Backend is an audit.Chain under test, with the means to tamper with
// it and to take it down.
type Backend struct {
	Chain audit.Chain
	// EditRow replaces old with new in the stored line of the row with
	// seq (the way an UPDATE would); it fails the test if there is none.
	EditRow func(t *testing.T, seq int64, old, new string)
	// DeleteRow deletes the row with seq.
	DeleteRow func(t *testing.T, seq int64)
	// Down makes the chain unreachable, Up makes it reachable again.
	Down, Up func(t *testing.T)
}

// RunChain runs the conformance suite of audit.Chain: newBackend returns a
// fresh, empty chain for every subtest.
func RunChain(t *testing.T, newBackend func(t *testing.T) Backend) {
	t.Run("ThreeWritersOneChain", func(t *testing.T) {
		b := newBackend(t)
		pub, key := newKey(t)
		const perWriter = 150
		var wg sync.WaitGroup
		for i := range 3 {
			l := openLog(t, b.Chain, key, fmt.Sprintf("replica-%d", i+1), false)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := range perWriter {
					l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/m", Version: fmt.Sprintf("v1.0.%d", n), File: "zip"})
					if n%50 == 0 {
						time.Sleep(2 * time.Millisecond) // several bursts, interleaved
					}
				}
				if err := l.Close(); err != nil {
					t.Errorf("close: %v", err)
				}
				if d := l.Dropped(); d != 0 {
					t.Errorf("%d records dropped", d)
				}
			}()
		}
		wg.Wait()
		rep, err := audit.VerifyChain(context.Background(), b.Chain, pub, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, rep)
		}
		if rep.Records != 3*perWriter || rep.LastSeq != 3*perWriter {
			t.Errorf("verify read %d records up to seq %d, want %d", rep.Records, rep.LastSeq, 3*perWriter)
		}
		if want := []string{"replica-1", "replica-2", "replica-3"}; !slices.Equal(rep.Replicas, want) {
			t.Errorf("replicas %v, want %v", rep.Replicas, want)
		}
		if !strings.Contains(rep.String(), "replica-1, replica-2, replica-3") {
			t.Errorf("report does not name the replicas: %s", rep)
		}
		per := map[string]int{}
		err = audit.QueryChain(context.Background(), b.Chain, audit.Filter{Result: audit.ResultHit}, func(r audit.Record) error {
			per[r.Replica]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Replicas {
			if per[r] != perWriter {
				t.Errorf("query: %d records of %s, want %d", per[r], r, perWriter)
			}
		}
	})

	tampered := func(t *testing.T, tamper func(b Backend)) audit.Report {
		b := newBackend(t)
		pub, key := newKey(t)
		l1 := openLog(t, b.Chain, key, "replica-a", false)
		l2 := openLog(t, b.Chain, key, "replica-b", false)
		for n := range 10 {
			l := l1
			if n%2 == 1 {
				l = l2
			}
			l.Write(audit.Record{Result: audit.ResultMiss, Module: "example.com/m", Version: fmt.Sprintf("v1.0.%d", n), File: "zip"})
			waitFor(t, "the record in the chain", func() bool { return count(t, b.Chain) == n+1 })
		}
		l1.Close()
		l2.Close()
		if rep, err := audit.VerifyChain(context.Background(), b.Chain, pub, audit.VerifyOptions{}); err != nil {
			t.Fatalf("verify before tampering: %v\n%s", err, rep)
		}
		tamper(b)
		rep, err := audit.VerifyChain(context.Background(), b.Chain, pub, audit.VerifyOptions{})
		if !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("verify after tampering: %v, want ErrTampered\n%s", err, rep)
		}
		return rep
	}
	t.Run("EditedRowNamed", func(t *testing.T) {
		rep := tampered(t, func(b Backend) { b.EditRow(t, 5, `"version":"v1.0.4"`, `"version":"v1.0.9"`) })
		p := rep.Problems[0]
		if p.Seq != 5 || p.Kind != audit.ProblemEdited || p.File != "replica replica-a" {
			t.Errorf("first problem %q, want seq 5 of replica-a edited", p)
		}
	})
	t.Run("DeletedRowNamed", func(t *testing.T) {
		rep := tampered(t, func(b Backend) { b.DeleteRow(t, 4) })
		p := rep.Problems[0]
		if p.Seq != 5 || p.Kind != audit.ProblemMissing || !strings.Contains(p.Msg, "record 4 is missing") {
			t.Errorf("first problem %q, want record 4 missing", p)
		}
	})

	t.Run("SpooledWhileDown", func(t *testing.T) {
		b := newBackend(t)
		pub, key := newKey(t)
		spool := t.TempDir()
		l := openLogSpool(t, b.Chain, key, "replica-s", false, spool)
		for range 5 {
			l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/before"})
		}
		waitFor(t, "5 records in the chain", func() bool { return count(t, b.Chain) == 5 })
		b.Down(t)
		for range 40 {
			l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/during"})
		}
		waitFor(t, "the log to report the chain down", func() bool { return errors.Is(l.Healthy(), audit.ErrUnwritable) })
		waitFor(t, "40 records in the spool", func() bool { return spooled(t, spool) == 40 })
		b.Up(t)
		waitFor(t, "the spool to drain", func() bool { return spooled(t, spool) == 0 && l.Healthy() == nil })
		for range 5 {
			l.Write(audit.Record{Result: audit.ResultHit, Module: "example.com/after"})
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if d := l.Dropped(); d != 0 {
			t.Errorf("%d records dropped", d)
		}
		rep, err := audit.VerifyChain(context.Background(), b.Chain, pub, audit.VerifyOptions{})
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, rep)
		}
		if rep.Records != 50 {
			t.Errorf("%d records, want exactly 50", rep.Records)
		}
		var order []string
		audit.QueryChain(context.Background(), b.Chain, audit.Filter{}, func(r audit.Record) error {
			if len(order) == 0 || order[len(order)-1] != r.Module {
				order = append(order, r.Module)
			}
			return nil
		})
		if want := []string{"example.com/before", "example.com/during", "example.com/after"}; !slices.Equal(order, want) {
			t.Errorf("records in order %v, want %v", order, want)
		}
	})

	t.Run("SpoolSurvivesRestart", func(t *testing.T) {
		b := newBackend(t)
		pub, key := newKey(t)
		spool := t.TempDir()
		b.Down(t)
		l := openLogSpool(t, b.Chain, key, "replica-r", false, spool)
		for range 7 {
			l.Write(audit.Record{Result: audit.ResultHit})
		}
		l.Close() // down: the records stay in the spool
		if n := spooled(t, spool); n != 7 {
			t.Fatalf("%d records spooled, want 7", n)
		}
		// A copy of the spool, as a crash between the append and the
		// removal of the file would leave it.
		saved := t.TempDir()
		copyDir(t, spool, saved)
		b.Up(t)
		l = openLogSpool(t, b.Chain, key, "replica-r", false, spool)
		l.Close()
		if n := spooled(t, spool); n != 0 {
			t.Fatalf("%d records still spooled", n)
		}
		copyDir(t, saved, spool)
		l = openLogSpool(t, b.Chain, key, "replica-r", false, spool)
		l.Close()
		rep, err := audit.VerifyChain(context.Background(), b.Chain, pub, audit.VerifyOptions{})
		if err != nil || rep.Records != 7 {
			t.Fatalf("verify: %v, %d records, want 7\n%s", err, rep.Records, rep)
		}
	})

	t.Run("FailClosedRefusesWhileDown", func(t *testing.T) {
		b := newBackend(t)
		_, key := newKey(t)
		l := openLog(t, b.Chain, key, "replica-c", true)
		if err := l.Admit(); err != nil {
			t.Fatalf("admit while up: %v", err)
		}
		b.Down(t)
		l.Write(audit.Record{Result: audit.ResultHit})
		waitFor(t, "admit to refuse", func() bool { return errors.Is(l.Admit(), audit.ErrUnwritable) })
		b.Up(t)
		waitFor(t, "admit to accept again", func() bool { return l.Admit() == nil })
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n := count(t, b.Chain); n != 1 {
			t.Errorf("%d records in the chain, want the 1 written while down", n)
		}
	})
}

func newKey(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, key
}

func openLog(t *testing.T, c audit.Chain, key ed25519.PrivateKey, replica string, failClosed bool) *audit.Log {
	return openLogSpool(t, c, key, replica, failClosed, "")
}

func openLogSpool(t *testing.T, c audit.Chain, key ed25519.PrivateKey, replica string, failClosed bool, spool string) *audit.Log {
	t.Helper()
	l, err := audit.Open(audit.Config{
		Dir:          t.TempDir(),
		SpoolDir:     spool,
		Chain:        c,
		Replica:      replica,
		SigningKey:   key,
		FailClosed:   failClosed,
		SyncInterval: 20 * time.Millisecond,
		MaxWait:      time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// count returns how many rows c holds.
func count(t *testing.T, c audit.Chain) int {
	n := 0
	if err := c.Rows(context.Background(), func(audit.ChainRow) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func copyDir(t *testing.T, from, to string) {
	des, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(from, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, de.Name()), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// spooled returns how many records wait in the spool directory.
func spooled(t *testing.T, dir string) int {
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, de := range des {
		data, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			continue // drained meanwhile
		}
		n += strings.Count(string(data), "\n")
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
