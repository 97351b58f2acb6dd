package server

import (
	"context"
	"log/slog"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/storage"
)

// OpenStore opens the module store cfg names, as serve does (see
// openStore), for `modgate import-data`. The caller closes it if it is an
// io.Closer.
func OpenStore(ctx context.Context, cfg config.Config, log *slog.Logger) (storage.Store, error) {
	return openStore(ctx, cfg, log)
}
