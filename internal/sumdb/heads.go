package sumdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	xsumdb "golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/modgate/modgate/internal/storage"
)

// A HeadCopy keeps a second copy of the verified tree head outside the
// state directory (the server keeps it in its audit log). It exists
// because a deleted state file would otherwise let the Verifier trust
// whatever tree the database serves next, a fork included.
//
// SaveHead records note, a signed tree head of database db the Verifier
// has verified; it must not block for long. LastHead returns the note
// SaveHead recorded last for db, nil if none. Both must be safe for
// concurrent use.
type HeadCopy interface {
	SaveHead(db string, note []byte)
	LastHead(db string) ([]byte, error)
}

// DefaultHeadInterval is how often, at most, an advancing tree head is
// saved to the HeadCopy.
const DefaultHeadInterval = time.Minute

// headAdvanced saves msg, the tree head just verified and persisted, to the
// HeadCopy: at once when none was saved for HeadInterval, else later (at
// the next advance or lookup after the interval, or on Close), so that a
// busy database costs one record per interval.
func (v *Verifier) headAdvanced(msg []byte) {
	if v.heads == nil {
		return
	}
	v.headMu.Lock()
	defer v.headMu.Unlock()
	v.headPending = bytes.Clone(msg)
	v.saveHeadLocked(false)
}

// saveHeadLocked saves the pending head if the interval has passed (or
// always, with force). v.headMu must be held: saves stay in order.
func (v *Verifier) saveHeadLocked(force bool) {
	if v.headPending == nil {
		return
	}
	now := v.now()
	if !force && !v.headSaved.IsZero() && now.Sub(v.headSaved) < v.headInterval {
		return
	}
	v.heads.SaveHead(v.db.Name, v.headPending)
	v.headSaved, v.headPending = now, nil
}

// flushHead saves a pending head whose interval has passed.
func (v *Verifier) flushHead(force bool) {
	if v.heads == nil {
		return
	}
	v.headMu.Lock()
	defer v.headMu.Unlock()
	v.saveHeadLocked(force)
}

// recoverLatest is called when the state holds no tree head. It returns
// the last head saved to the HeadCopy, after writing it to the state, so
// that the client resumes from it and proves the database's current tree
// consistent with it (or reports the fork); nil when there is none.
func (v *Verifier) recoverLatest() ([]byte, error) {
	v.recoverOnce.Do(func() {
		if v.heads == nil {
			return
		}
		msg, err := v.heads.LastHead(v.db.Name)
		if err != nil {
			v.log.Error("cannot read the saved checksum database tree head", "db", v.db.Name, "err", err)
			return
		}
		if len(msg) == 0 {
			return
		}
		tree, err := v.parseHead(msg)
		if err != nil {
			v.log.Error("saved checksum database tree head does not verify; not using it", "db", v.db.Name, "err", err)
			return
		}
		v.log.Warn("checksum database tree head missing from the state directory; resuming from the copy in the audit log",
			"db", v.db.Name, "size", tree.N, "hash", tree.Hash.String())
		// The copy is only as good as the audit chain it was read from,
		// which is not verified here: it must agree with the cache too.
		if err := v.crossCheck(msg); err != nil {
			v.refuse(fmt.Errorf("refusing the tree head recovered from the audit log: %w", err))
			return
		}
		v.recovered = msg
	})
	if err := v.forked.Load(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSecurity, *err)
	}
	if v.recovered == nil {
		return nil, nil
	}
	if err := v.state.swapLatest(nil, v.recovered); err != nil && !errors.Is(err, xsumdb.ErrWriteConflict) {
		return nil, err
	}
	return v.state.readLatest()
}

// unprovenRecovery reports whether the state still holds the head
// recovered from the copy: the database has not yet proved its tree
// consistent with it.
func (v *Verifier) unprovenRecovery() bool {
	if v.recovered == nil {
		return false
	}
	cur, err := v.state.readLatest()
	return err == nil && bytes.Equal(cur, v.recovered)
}

// refuseRecovered handles a lookup that failed, even without the cache,
// because the database's answers do not verify against the head recovered
// from the copy (the state directory, verified partial tiles included,
// was lost). A database serving a tree of its own key that cannot be
// reconciled with a head it signed before is a fork, or an answer
// corrupted on the way: either way nothing is verified against it until
// an operator acts, and it is a security event.
func (v *Verifier) refuseRecovered(path, vers string, cause error) error {
	v.refuse(fmt.Errorf("checksum database %s cannot prove its tree consistent with the tree head recovered from the audit log: %w", v.db.Name, cause))
	return v.securityError(path, vers)
}

// refuse makes every later lookup fail as a security error, and logs and
// reports err the first time.
func (v *Verifier) refuse(err error) {
	if v.forked.CompareAndSwap(nil, &err) {
		v.log.Error("checksum database misbehaviour detected", "db", v.db.Name, "detail", err.Error())
		v.securityEvent(err.Error())
	}
}

// parseHead verifies a signed tree head of the database.
func (v *Verifier) parseHead(msg []byte) (tlog.Tree, error) {
	verifier, err := note.NewVerifier(v.db.Key)
	if err != nil {
		return tlog.Tree{}, err
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.ParseTree([]byte(n.Text))
}

// errForkedCache is the error of a tree head that the cached tiles
// disagree with.
var errForkedCache = errors.New("the cached tiles disagree with the tree head")

// crossCheck is called before the Verifier adopts a tree head without any
// verified predecessor (no state and no saved copy: a first start, or
// both deleted). Such a head is trusted on its signature alone, so it is
// checked against what the cache already holds: the highest full tile of
// record hashes in the Store, fetched earlier from this database, must be
// the tile the new tree has at that place. It returns an error matching
// errForkedCache when the cached tile differs from the database's and the
// database's is the one consistent with the new head; nil when they agree,
// nothing is cached, or the database cannot be asked (the lookup then
// fails on its own).
func (v *Verifier) crossCheck(msg []byte) error {
	lister, ok := v.store.(storage.Lister)
	if !ok || len(msg) == 0 {
		return nil
	}
	tree, err := v.parseHead(msg)
	if err != nil {
		return nil // the client reports it
	}
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	dir := "sumdb/" + v.db.Name + "/tile/8/0/"
	names, err := lister.List(ctx, dir)
	if err != nil {
		v.log.Warn("listing cached checksum database tiles", "err", err)
		return nil
	}
	best := int64(-1)
	for _, name := range names {
		k, err := strconv.ParseInt(name, 10, 64)
		if err != nil || len(name) != 3 || (k+1)*256 > tree.N {
			continue
		}
		best = max(best, k)
	}
	if best < 0 {
		return nil
	}
	t := tlog.Tile{H: 8, L: 0, N: best, W: 256}
	rc, err := v.store.Get(ctx, dir+name3(best))
	if err != nil {
		return nil
	}
	cached, err := io.ReadAll(io.LimitReader(rc, 256*tlog.HashSize+1))
	rc.Close()
	if err != nil || len(cached) != 256*tlog.HashSize {
		return nil // not a tile: the client heals it
	}
	index := []int64{tlog.StoredHashIndex(0, best*256)}
	withCache := &checkTiles{v: v, ctx: ctx, tile: t, data: cached}
	if _, err := tlog.TileHashReader(tree, withCache).ReadHashes(index); err == nil {
		return nil
	}
	remote := &checkTiles{v: v, ctx: ctx, tile: t}
	if _, err := tlog.TileHashReader(tree, remote).ReadHashes(index); err != nil || bytes.Equal(remote.data, cached) {
		return nil // the database did not answer consistently: not a proof
	}
	return fmt.Errorf("%w: tile %s was cached from checksum database %s before, and the tree of size %d it serves now has another",
		errForkedCache, t.Path(), v.db.Name, tree.N)
}

// name3 is a tile index below 1000 as the tile path writes it.
func name3(k int64) string { return fmt.Sprintf("%03d", k) }

// checkTiles is a tlog.TileReader for crossCheck: tile is read from data
// when set, everything else from the database. The database's data for
// tile is kept in data when it was not set.
type checkTiles struct {
	v    *Verifier
	ctx  context.Context
	tile tlog.Tile
	data []byte
}

func (c *checkTiles) Height() int { return 8 }

func (c *checkTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		if t == c.tile && c.data != nil {
			out[i] = c.data
			continue
		}
		data, err := fetchAll(c.ctx, c.v.source, "sumdb/"+c.v.db.Name+"/"+t.Path())
		if err != nil {
			return nil, err
		}
		if len(data) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s: %d bytes", t.Path(), len(data))
		}
		if t == c.tile {
			c.data = data
		}
		out[i] = data
	}
	return out, nil
}

func (c *checkTiles) SaveTiles([]tlog.Tile, [][]byte) {}
