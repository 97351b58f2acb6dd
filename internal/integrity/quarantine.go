package integrity

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/modgate/modgate/internal/storage"
)

// QuarantinePrefix is where Quarantine moves bad files: "quarantine/" and
// the file's own key.
const QuarantinePrefix = "quarantine/"

// Quarantine moves the stored file key to QuarantinePrefix+key: it copies
// it there first and only then removes the original, so a crash in
// between leaves two copies, never none. A file already quarantined under
// that name is replaced (the newest bad copy is the one to look at). The
// store must be a storage.Deleter. A file that is already gone is not an
// error.
func Quarantine(ctx context.Context, store storage.Store, key string) error {
	return quarantine(ctx, store, store, key)
}

// quarantine copies key aside from store and removes it through evict.
func quarantine(ctx context.Context, store, evict storage.Store, key string) error {
	d, ok := evict.(storage.Deleter)
	if !ok {
		return fmt.Errorf("quarantining %s: the store cannot delete files", key)
	}
	rc, err := store.Get(ctx, key)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("quarantining %s: %w", key, err)
	}
	err = store.Put(ctx, QuarantinePrefix+key, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("quarantining %s: copying aside: %w", key, err)
	}
	if err := d.Delete(ctx, key); err != nil {
		return fmt.Errorf("quarantining %s: %w", key, err)
	}
	return nil
}

// quarantine moves a bad file aside as Quarantine does, removing it
// through c.Evict.
func (c *Checker) quarantine(ctx context.Context, key string) error {
	evict := c.Evict
	if evict == nil {
		evict = c.Store
	}
	return quarantine(ctx, c.Store, evict, key)
}
