package postgres_test

import (
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/vulndb"
)

// TestVulnDBSharedCopy: replica A syncs the database from its source and
// shares it; replica B, whose own source is unusable, loads A's copy
// without syncing; while another replica holds the sync lock, B does not
// sync either.
func TestVulnDBSharedCopy(t *testing.T) {
	dbA, dsn := migrated(t)
	dbB := open(t, dsn)
	source, err := filepath.Abs("../../vulndb/testdata/osv")
	if err != nil {
		t.Fatal(err)
	}
	a, err := vulndb.NewSyncer(vulndb.SyncConfig{Source: source, Dir: t.TempDir(), Shared: dbA.VulnDB()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(t.Context()); err != nil {
		t.Fatalf("A Sync: %v", err)
	}
	want := a.Status().Entries
	if want == 0 {
		t.Fatal("A synced no entries")
	}

	b, err := vulndb.NewSyncer(vulndb.SyncConfig{Source: filepath.Join(t.TempDir(), "missing"), Dir: t.TempDir(), Shared: dbB.VulnDB()})
	if err != nil {
		t.Fatal(err)
	}
	// Another replica is syncing: B only loads what is shared.
	unlock, ok, err := dbA.VulnDB().TryLock(t.Context())
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if err := b.Sync(t.Context()); err != nil {
		t.Fatalf("B Sync while the lock is held elsewhere: %v", err)
	}
	if st := b.Status(); !st.Loaded || st.Entries != want {
		t.Errorf("B after Sync: loaded %v, %d entries; want A's %d", st.Loaded, st.Entries, want)
	}
	if _, ok, _ := dbB.VulnDB().TryLock(t.Context()); ok {
		t.Errorf("B took the lock A holds")
	}
	unlock()
	// With the lock free, B syncs from its own (broken) source and says so,
	// keeping the shared copy in use.
	if err := b.Sync(t.Context()); err == nil {
		t.Errorf("B Sync from a missing source succeeded")
	}
	if st := b.Status(); !st.Loaded || st.Entries != want {
		t.Errorf("B after a failed sync: loaded %v, %d entries; want the shared copy kept", st.Loaded, st.Entries)
	}
	// A fresh replica loads the copy on Pull alone.
	c, _ := vulndb.NewSyncer(vulndb.SyncConfig{Source: source, Dir: t.TempDir(), Shared: open(t, dsn).VulnDB()})
	if err := c.Pull(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := c.Status(); st.Entries != want {
		t.Errorf("C after Pull: %d entries, want %d", st.Entries, want)
	}
}
