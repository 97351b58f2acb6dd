package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/storage/disk"
)

// OpenStore opens the module store cfg names, as New does, for commands
// that read or fill it without serving (export, import). It must open the
// same backend New opens.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Store, error) {
	store, err := disk.New(filepath.Join(cfg.DataDir, "modules"))
	if err != nil {
		return nil, fmt.Errorf("opening module store: %w", err)
	}
	return store, nil
}
