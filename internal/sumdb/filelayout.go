package sumdb

import (
	"context"
	"log/slog"
	"strings"
	"sync"

	"github.com/modgate/modgate/internal/storage"
)

// The Store is meant to be a complete file:// GOPROXY (the disk store's
// tree is one), checksum database included: the go command given
// GOPROXY=file://DIR reads DIR/sumdb/{name}/supported first, and only when
// it exists reads the database from DIR/sumdb/{name}/lookup/... and
// DIR/sumdb/{name}/tile/... instead of contacting the database itself
// (it never reads "latest": a client's latest tree head is its own).
// Lookups and full tiles are stored by both halves already; the Verifier
// also stores the partial tiles it verified (see clientOps.WriteCache),
// which a client needs to check a lookup made while the tree was smaller,
// and both mark the database supported the first time they store
// something for it.

// supportedKey is the Store key the go command probes.
func supportedKey(name string) string { return "sumdb/" + name + "/supported" }

// supportedMarks writes supportedKey once per database and process.
type supportedMarks struct {
	done sync.Map // database name -> struct{}
}

// mark writes the supported file for name into store unless it exists or
// was written already. A failure is logged and tried again next time.
func (m *supportedMarks) mark(ctx context.Context, store storage.Store, name string, log *slog.Logger) {
	if store == nil {
		return
	}
	if _, ok := m.done.Load(name); ok {
		return
	}
	key := supportedKey(name)
	if rc, err := store.Get(ctx, key); err == nil {
		rc.Close()
		m.done.Store(name, struct{}{})
		return
	}
	if err := store.Put(ctx, key, strings.NewReader("")); err != nil {
		log.Warn("marking the checksum database supported in storage", "key", key, "err", err)
		return
	}
	m.done.Store(name, struct{}{})
}
