package audit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

func TestQueryFilters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	clk := newClock()
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Now = clk.Now
		c.MaxAge = time.Hour
	})
	base := clk.Now()
	// Record i is written at base + i hours, in a file of its own.
	for i := range 8 {
		r := record(i)
		r.Time = base.Add(time.Duration(i) * time.Hour)
		l.Write(r)
		waitFor(t, "the record", func() bool { return hasRecord(t, dir, i) })
		clk.Add(time.Hour)
	}
	closeLog(t, l)
	if n := len(logFiles(t, dir)); n != 8 {
		t.Fatalf("setup: %d files, want 8", n)
	}

	tests := []struct {
		name string
		f    audit.Filter
		want []int // record numbers
	}{
		{"all", audit.Filter{}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"from", audit.Filter{From: base.Add(5 * time.Hour)}, []int{5, 6, 7}},
		{"to is exclusive", audit.Filter{To: base.Add(2 * time.Hour)}, []int{0, 1}},
		{"range", audit.Filter{From: base.Add(2 * time.Hour), To: base.Add(4*time.Hour + time.Minute)}, []int{2, 3, 4}},
		{"identity", audit.Filter{Identity: "user1"}, []int{1, 4, 7}},
		{"result", audit.Filter{Result: audit.ResultBlocked}, []int{2, 6}},
		{"module", audit.Filter{Module: "example.com/m3"}, []int{3}},
		{"module pattern", audit.Filter{Module: "example.com/*"}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"module prefix is per element", audit.Filter{Module: "example.com/m"}, nil},
		{"combined", audit.Filter{Identity: "user0", Result: audit.ResultError}, []int{3}},
		{"nothing", audit.Filter{Identity: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for _, r := range query(t, dir, tt.f) {
				var i int
				if _, err := fmt.Sscanf(r.RequestID, "req-%d", &i); err != nil {
					t.Fatal(err)
				}
				got = append(got, i)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Query(%+v) = records %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	// A callback error ends the query and is returned; ErrStop is not.
	n := 0
	if err := audit.Query(dir, audit.Filter{}, func(audit.Record) error {
		n++
		return audit.ErrStop
	}); err != nil || n != 1 {
		t.Errorf("Query stopped by ErrStop = %v after %d records, want nil after 1", err, n)
	}
}

func TestQuerySkipsIncompleteLastLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, nil)
	writeRecords(l, 0, 2)
	closeLog(t, l)
	f, err := os.OpenFile(logFiles(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"prev":`) // a record being written
	f.Close()
	if got := query(t, dir, audit.Filter{}); len(got) != 2 {
		t.Errorf("Query with a record being written: %d records, want 2", len(got))
	}
	verifyOK(t, dir, pubOf(key))
}

func TestPseudonyms(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef-key-one"), []byte("0123456789abcdef-key-two")
	p := audit.Pseudonym(k1, "192.0.2.7")
	if !strings.HasPrefix(p, audit.PseudonymPrefix) || len(p) != len(audit.PseudonymPrefix)+24 || strings.Contains(p, "192.0.2.7") {
		t.Errorf("Pseudonym = %q, want p: and 24 hex digits", p)
	}
	if audit.Pseudonym(k1, "192.0.2.7") != p {
		t.Error("Pseudonym is not stable")
	}
	if audit.Pseudonym(k2, "192.0.2.7") == p {
		t.Error("Pseudonym does not depend on the key")
	}
	if audit.Pseudonym(k1, "192.0.2.8") == p {
		t.Error("two values have one pseudonym")
	}
	if audit.Pseudonym(k1, "") != "" {
		t.Error("an empty value got a pseudonym")
	}

	dir := filepath.Join(t.TempDir(), "audit")
	key := testKey(t)
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Pseudonymize = true
		c.PseudonymKey = k1
	})
	writeRecords(l, 0, 6)
	closeLog(t, l)
	verifyOK(t, dir, pubOf(key))
	for _, raw := range []string{"192.0.2.1", `"user1"`} {
		if dirContains(t, dir, raw) {
			t.Errorf("the log holds %s in clear", raw)
		}
	}
	got := query(t, dir, audit.Filter{Identity: audit.Pseudonym(k1, "user1")})
	if len(got) != 2 || got[0].RequestID != "req-1" || got[1].RequestID != "req-4" {
		t.Errorf("Query by the pseudonym of user1 = %+v, want req-1 and req-4", got)
	}
	if got[0].ClientIP != audit.Pseudonym(k1, "192.0.2.1") {
		t.Errorf("ClientIP = %q, want the pseudonym of 192.0.2.1", got[0].ClientIP)
	}
}

func TestKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "audit.key")
	key, err := audit.LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	again, err := audit.LoadOrCreateKey(path)
	if err != nil || !again.Equal(key) {
		t.Errorf("LoadOrCreateKey a second time = %v, want the same key", err)
	}
	for _, p := range []string{path + ".pub", path} {
		pub, err := audit.LoadPublicKey(p)
		if err != nil || !pub.Equal(pubOf(key)) {
			t.Errorf("LoadPublicKey(%s) = %v, want the key's public half", filepath.Base(p), err)
		}
	}

	bad := filepath.Join(dir, "bad.key")
	os.WriteFile(bad, []byte("hunter2\n"), 0o600)
	if _, err := audit.LoadOrCreateKey(bad); err == nil {
		t.Error("LoadOrCreateKey of a file that is not a key = nil error")
	}
	if data, _ := os.ReadFile(bad); string(data) != "hunter2\n" {
		t.Error("LoadOrCreateKey overwrote a file that is not a key")
	}
	if _, err := audit.LoadPublicKey(bad); err == nil {
		t.Error("LoadPublicKey of a file that is not a key = nil error")
	}

	secretPath := filepath.Join(dir, "pseudonym.key")
	s1, err := audit.LoadOrCreateSecret(secretPath)
	if err != nil || len(s1) != 32 {
		t.Fatalf("LoadOrCreateSecret = %d bytes, %v; want 32", len(s1), err)
	}
	s2, err := audit.LoadOrCreateSecret(secretPath)
	if err != nil || !slices.Equal(s1, s2) {
		t.Errorf("LoadOrCreateSecret a second time = %v, want the same key", err)
	}
	if got, want := audit.KeyPath("/var/lib/modgate/audit/"), "/var/lib/modgate/audit.key"; got != want {
		t.Errorf("KeyPath = %q, want %q", got, want)
	}
}

func TestLast(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	if _, ok, err := audit.Last(dir, func(audit.Record) bool { return true }); ok || err != nil {
		t.Fatalf("Last of a missing log = %v, %v; want none", ok, err)
	}
	key := testKey(t)
	clk := newClock()
	l := openLog(t, dir, key, func(c *audit.Config) {
		c.Now = clk.Now
		c.MaxAge = time.Hour
	})
	writeRecords(l, 0, 10)
	waitFor(t, "the records to be written", func() bool { return len(query(t, dir, audit.Filter{})) == 10 })
	clk.Add(2 * time.Hour) // the next record opens a second file
	writeRecords(l, 10, 12)
	closeLog(t, l)
	if n := len(logFiles(t, dir)); n != 2 {
		t.Fatalf("setup: %d files, want 2", n)
	}
	for _, tt := range []struct {
		result audit.Result
		want   string
	}{
		{audit.ResultBlocked, "req-10"}, // in the last file
		{audit.ResultMiss, "req-9"},     // only in the first
		{audit.ResultAdmin, ""},
	} {
		r, ok, err := audit.Last(dir, func(r audit.Record) bool { return r.Result == tt.result })
		if err != nil || ok != (tt.want != "") || r.RequestID != tt.want {
			t.Errorf("Last(result %s) = %q, %v, %v; want %q", tt.result, r.RequestID, ok, err, tt.want)
		}
	}
}
