package integrity

import (
	"testing"

	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/disk"
)

// benchGuard measures one serve-path check of key from a disk store:
// fresh (the first serve in a process: a full hash) or seen (a later hit:
// a Stat compared).
func benchGuard(b *testing.B, file string, fresh bool) {
	store, err := disk.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	src := &fakeSource{mod: map[string]string{}, zip: map[string]string{}}
	testModule(b, storage.Store(store), src, "example.com/m", "v1.0.0")
	key, _ := FileKey("example.com/m", "v1.0.0", file)
	c := &Checker{Store: store, Sources: []Source{src}, ScratchDir: b.TempDir()}
	g := NewGuard(GuardConfig{Checker: c})
	ctx := b.Context()
	for b.Loop() {
		if fresh {
			g.forget(key)
		}
		rc, err := store.Get(ctx, key)
		if err != nil {
			b.Fatal(err)
		}
		body, err := g.CheckHit(ctx, "example.com/m", "v1.0.0", key, rc)
		if err != nil {
			b.Fatal(err)
		}
		body.Close()
	}
}

func BenchmarkGuardModFirst(b *testing.B) { benchGuard(b, "mod", true) }
func BenchmarkGuardModSeen(b *testing.B)  { benchGuard(b, "mod", false) }
func BenchmarkGuardZipFirst(b *testing.B) { benchGuard(b, "zip", true) }
func BenchmarkGuardZipSeen(b *testing.B)  { benchGuard(b, "zip", false) }
