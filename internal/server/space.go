package server

import (
	"context"
	"time"

	"github.com/modgate/modgate/internal/storage/disk"
)

// spaceInterval is how often the free space of the data directory is read
// for modgate_storage_free_bytes: often enough for an alert to fire well
// before a disk fills, and one statfs(2) costs microseconds.
const spaceInterval = 30 * time.Second

// watchStorage publishes the free and total space of the file system
// holding the data directory (the module store on disk; caches and Git
// mirrors whatever the store) as metrics, at start and every
// spaceInterval.
// A failed read is logged once per failure streak and leaves the last
// values in place.
func (s *Server) watchStorage(ctx context.Context) {
	t := time.NewTicker(spaceInterval)
	defer t.Stop()
	failing := false
	for {
		free, size, err := disk.Space(s.cfg.DataDir)
		switch {
		case err != nil && !failing:
			s.log.Warn("reading the free space of the data directory failed", "err", err)
			failing = true
		case err == nil:
			s.metrics.StorageSpace(free, size)
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
