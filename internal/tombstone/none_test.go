package tombstone

import (
	"errors"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/storage/disk"
)

// TestPurgeFromAnotherProcess: a server's Set that has learned that the
// store holds no tombstone still sees, at its next check, a tombstone that
// another Set (the command line, another process) wrote, once that Add has
// returned; and after that, tombstones of other modules too.
func TestPurgeFromAnotherProcess(t *testing.T) {
	store, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	// One clock for both, as on one machine, which only the command
	// line's waiting moves: a check right after its Add must not answer
	// from the "no tombstone" it read before.
	clock := time.Unix(1e9, 0)
	now := func() time.Time { return clock }
	server, cli := New(store), New(store)
	for _, s := range []*Set{server, cli} {
		s.now, s.sleep = now, func(d time.Duration) { clock = clock.Add(d) }
	}
	for range 3 {
		if err := server.Check(ctx, "example.com/m", "v1.2.3"); err != nil {
			t.Fatalf("Check before any purge = %v, want nil", err)
		}
		if err := server.CheckModule(ctx, "example.com/other"); err != nil {
			t.Fatalf("CheckModule before any purge = %v, want nil", err)
		}
	}
	if err := cli.Add(ctx, Tombstone{Module: "example.com/m", Version: "v1.2.3", Reason: "takedown"}); err != nil {
		t.Fatal(err)
	}
	if err := server.Check(ctx, "example.com/m", "v1.2.3"); !errors.Is(err, ErrPurged) {
		t.Fatalf("Check right after another process's purge = %v, want ErrPurged", err)
	}
	if err := server.Check(ctx, "Example.com/M", "v1.2.3"); !errors.Is(err, ErrPurged) {
		t.Fatalf("Check of a case variant = %v, want ErrPurged", err)
	}
	if err := server.Check(ctx, "example.com/m", "v1.2.4"); err != nil {
		t.Fatalf("Check of another version = %v, want nil", err)
	}
	if err := cli.Add(ctx, Tombstone{Module: "example.com/other", Reason: "malware"}); err != nil {
		t.Fatal(err)
	}
	if err := server.CheckModule(ctx, "example.com/other"); !errors.Is(err, ErrPurged) {
		t.Fatalf("CheckModule right after another process's module purge = %v, want ErrPurged", err)
	}
	if err := server.Check(ctx, "example.com/other", "v0.0.0-20240101000000-abcdefabcdef"); !errors.Is(err, ErrPurged) {
		t.Fatalf("Check of a pseudo-version of a purged module = %v, want ErrPurged", err)
	}
}

// TestNoneAfterRemove: once the last tombstone is removed, versions are
// served again.
func TestNoneAfterRemove(t *testing.T) {
	store, err := disk.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	set := New(store)
	if err := set.Add(ctx, Tombstone{Module: "example.com/m", Version: "v1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); !errors.Is(err, ErrPurged) {
		t.Fatalf("Check = %v, want ErrPurged", err)
	}
	if _, err := set.Remove(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if err := New(store).Check(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Fatalf("Check after Remove, new Set = %v, want nil", err)
	}
	if err := set.Check(ctx, "example.com/m", "v1.0.0"); err != nil {
		t.Fatalf("Check after Remove = %v, want nil", err)
	}
}
