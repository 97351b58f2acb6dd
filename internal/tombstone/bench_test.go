package tombstone

import (
	"testing"

	"github.com/modgate/modgate/internal/storage/disk"
)

// BenchmarkCheck is the cost the mirror adds to every module file request
// on a disk store: one listing of an absent directory.
func BenchmarkCheck(b *testing.B) {
	store, err := disk.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	set := New(store)
	ctx := b.Context()
	for b.Loop() {
		if err := set.Check(ctx, "example.com/m", "v1.2.3"); err != nil {
			b.Fatal(err)
		}
	}
}
