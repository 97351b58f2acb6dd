package sumdb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

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

// A client reading the Store as a file:// GOPROXY checks each lookup
// against the largest tree it has seen so far, in its own order, which
// may be the lookup's own tree: one that modgate's verification never
// used as its latest (a lookup the Handler stored for a client before the
// Verifier needed it carries a tree older than the Verifier's). The
// partial tiles of that tree are then in no cache. keepLookupTree fills
// them in after a successful lookup: it computes the lookup tree's hash
// and the record's proof in that tree from tiles, which tlog checks
// against the signed tree hash before they are stored.

// keepLookupTree stores the tiles that prove the record of path@vers's
// stored lookup in the lookup's own tree, in the background (Close waits
// for it). Lookups happen only when a module file is fetched, and a second
// run finds every tile stored, so nothing remembers which lookups are
// done. Failures only cost completeness: they are logged at Debug.
func (v *Verifier) keepLookupTree(path, vers string) {
	if v.store == nil {
		return
	}
	epath, err := module.EscapePath(path)
	if err != nil {
		return
	}
	evers, err := module.EscapeVersion(strings.TrimSuffix(vers, "/go.mod"))
	if err != nil {
		return
	}
	key := "sumdb/" + v.db.Name + "/lookup/" + epath + "@" + evers
	v.lookups.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		defer cancel()
		if err := v.proveInOwnTree(ctx, key); err != nil {
			v.log.Debug("keeping the tiles of a lookup's tree", "key", key, "err", err)
		}
	})
}

// proveInOwnTree reads the lookup stored under key and proves its record
// in its own tree, through a tile reader that stores what it verified.
func (v *Verifier) proveInOwnTree(ctx context.Context, key string) error {
	data, err := v.readStored(ctx, key)
	if err != nil {
		return err
	}
	id, _, treeMsg, err := tlog.ParseRecord(data)
	if err != nil {
		return err
	}
	verifier, err := note.NewVerifier(v.db.Key)
	if err != nil {
		return err
	}
	n, err := note.Open(treeMsg, note.VerifierList(verifier))
	if err != nil {
		return err
	}
	tree, err := tlog.ParseTree([]byte(n.Text))
	if err != nil {
		return err
	}
	thr := tlog.TileHashReader(tree, &storeTiles{ctx: ctx, v: v})
	if _, err := tlog.TreeHash(tree.N, thr); err != nil {
		return err
	}
	_, err = tlog.ProveRecord(tree.N, id, thr)
	return err
}

// readStored reads key from the Store, bounded by maxBody.
func (v *Verifier) readStored(ctx context.Context, key string) ([]byte, error) {
	rc, err := v.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxBody+1))
	if err == nil && len(data) > maxBody {
		err = fmt.Errorf("%s: larger than %d bytes", key, maxBody)
	}
	return data, err
}

// storeTiles is a tlog.TileReader over the Store and the database: a tile
// comes from the Store, else as the prefix of its full tile in the Store,
// else from the database; SaveTiles, called by tlog once a tile is proven
// to belong to the tree, stores it under its protocol path.
type storeTiles struct {
	ctx context.Context
	v   *Verifier
}

func (r *storeTiles) Height() int { return 8 } // the go command's and every Go database's

func (r *storeTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := r.readTile(t)
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}

func (r *storeTiles) readTile(t tlog.Tile) ([]byte, error) {
	prefix := "sumdb/" + r.v.db.Name + "/"
	if data, err := r.v.readStored(r.ctx, prefix+t.Path()); err == nil {
		return data, nil
	}
	full := t
	full.W = 1 << t.H
	if full != t {
		if data, err := r.v.readStored(r.ctx, prefix+full.Path()); err == nil && len(data) == full.W*tlog.HashSize {
			return data[:t.W*tlog.HashSize], nil
		}
	}
	return fetchAll(r.ctx, r.v.source, prefix+t.Path())
}

func (r *storeTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {
	for i, t := range tiles {
		key := "sumdb/" + r.v.db.Name + "/" + t.Path()
		if rc, err := r.v.store.Get(r.ctx, key); err == nil {
			rc.Close()
			continue
		}
		if err := r.v.store.Put(r.ctx, key, bytes.NewReader(data[i])); err != nil {
			r.v.log.Debug("storing a checksum database tile", "key", key, "err", err)
		}
	}
}
