package mirror

import "github.com/modgate/modgate/internal/storage"

// Store returns the store the mirror serves from (Config.Store), for
// maintenance that must go through the same memory cache (purges).
func (m *Mirror) Store() storage.Store { return m.cfg.Store }
