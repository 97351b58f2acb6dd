package sumdb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// keepLookupTree queues the lookup of path@vers, just stored, so that the
// tiles proving its record in its own tree are stored too (keeper below).
// Lookups happen only when a module file is fetched, and a second run
// finds every tile stored, so nothing remembers which lookups are done.
// Failures only cost completeness: they are logged at Debug.
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
	v.keeper.add(v, "sumdb/"+v.db.Name+"/lookup/"+epath+"@"+evers)
}

// The keeper does that work later, when the Verifier is idle. It is not
// needed by any request modgate serves, and it is not cheap: a lookup the
// upstream answers from its cache carries the tree of the day it was
// cached, so nearly every lookup of a cold fill names a different tree,
// whose partial tiles must be fetched and every tile on the record's path
// read and hashed again (a quarter of modgate's CPU in a cold fill when
// it ran beside the lookups). So it runs one lookup at a time, once no
// lookup has started or ended, and no client was served, for keeperIdle
// (a cold fill is short of CPU once its lookups are done: the go
// command and the fills are hashing zips), or when the oldest waiting
// one has waited keeperMaxDelay under steady load; Close finishes what is
// queued within keeperCloseBudget. At most keeperQueue lookups wait (more
// are dropped: a file:// client then fetches those tiles itself). A crash
// loses the queue, which costs the same.
const (
	keeperIdle        = 300 * time.Millisecond
	keeperMaxDelay    = 10 * time.Minute
	keeperCloseBudget = 2 * time.Second
	keeperQueue       = 1 << 16
)

type keeper struct {
	mu      sync.Mutex
	queue   []keeperItem
	queued  map[string]bool
	trees   map[int64]bool // tree sizes whose hash (its right edge) is stored
	running bool
	closing bool
	wake    chan struct{}
	done    chan struct{}

	busy       atomic.Int64 // lookups running
	lastBusy   atomic.Int64 // when a lookup last started or ended (UnixNano)
	lastActive func() time.Time
}

type keeperItem struct {
	key   string
	since time.Time
}

// lookupStarted and lookupEnded tell the keeper about lookups.
func (k *keeper) lookupStarted() { k.busy.Add(1); k.lastBusy.Store(time.Now().UnixNano()) }
func (k *keeper) lookupEnded()   { k.busy.Add(-1); k.lastBusy.Store(time.Now().UnixNano()) }

func (k *keeper) add(v *Verifier, key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closing || k.queued[key] || len(k.queue) >= keeperQueue {
		return
	}
	if k.queued == nil {
		k.queued = make(map[string]bool)
		k.trees = make(map[int64]bool)
		k.wake = make(chan struct{}, 1)
		k.done = make(chan struct{})
	}
	k.queued[key] = true
	k.queue = append(k.queue, keeperItem{key, time.Now()})
	if !k.running {
		k.running = true
		go k.run(v)
	}
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// idle reports whether no lookup has run, and no client was served, for
// keeperIdle.
func (k *keeper) idle() bool {
	if k.busy.Load() != 0 || time.Since(time.Unix(0, k.lastBusy.Load())) < keeperIdle {
		return false
	}
	return k.lastActive == nil || time.Since(k.lastActive()) >= keeperIdle
}

func (k *keeper) run(v *Verifier) {
	defer close(k.done)
	var deadline time.Time // set by close
	for {
		k.mu.Lock()
		if len(k.queue) == 0 {
			if k.closing {
				k.mu.Unlock()
				return
			}
			k.mu.Unlock()
			<-k.wake
			continue
		}
		item, closing := k.queue[0], k.closing
		if closing && deadline.IsZero() {
			deadline = time.Now().Add(keeperCloseBudget)
		}
		if !closing && !k.idle() && time.Since(item.since) < keeperMaxDelay {
			k.mu.Unlock()
			select {
			case <-k.wake:
			case <-time.After(keeperIdle / 3):
			}
			continue
		}
		if closing && time.Now().After(deadline) {
			v.log.Debug("stopping with checksum database tiles left to keep", "lookups", len(k.queue))
			k.queue = nil
			k.mu.Unlock()
			return
		}
		k.queue = k.queue[1:]
		delete(k.queued, item.key)
		k.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
		if err := v.proveInOwnTree(ctx, item.key); err != nil {
			v.log.Debug("keeping the tiles of a lookup's tree", "key", item.key, "err", err)
		}
		cancel()
	}
}

// close finishes the queue (within keeperCloseBudget) and stops.
func (k *keeper) close() {
	k.mu.Lock()
	k.closing = true
	running := k.running
	if running {
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}
	k.mu.Unlock()
	if running {
		<-k.done
	}
}

// treeKept and keepTree remember the trees whose right edge is stored.
func (k *keeper) treeKept(n int64) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.trees[n]
}

func (k *keeper) keepTree(n int64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.trees) >= 4096 {
		clear(k.trees)
	}
	k.trees[n] = true
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
	if !v.keeper.treeKept(tree.N) {
		if _, err := tlog.TreeHash(tree.N, thr); err != nil {
			return err
		}
		v.keeper.keepTree(tree.N)
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
