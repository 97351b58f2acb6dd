package server

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/state/postgres"
)

// openStateDB opens the PostgreSQL database state.postgres names and
// applies the schema migrations (under their advisory lock, so replicas
// starting at once apply each once). It is the one place the server opens
// the shared database; consumers take the *postgres.DB it returns.
func openStateDB(cfg config.Config, log *slog.Logger) (*postgres.DB, error) {
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := postgres.Open(ctx, dsn, log)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// sharedAuditChain points c at the replicas' shared audit chain when
// state.postgres is configured (and leaves the file log otherwise): every
// replica appends to one chain in the database, names itself in its
// records, and spools to {audit dir}/spool while the database cannot be
// reached. The database is closed by Close, after the audit log.
func (s *Server) sharedAuditChain(c *audit.Config) error {
	if !s.cfg.PostgresEnabled() {
		return nil
	}
	if s.auditDB == nil {
		db, err := openStateDB(s.cfg, s.log)
		if err != nil {
			return fmt.Errorf("audit: the shared chain in PostgreSQL: %w", err)
		}
		s.auditDB = db
	}
	c.Chain = s.auditDB.AuditChain()
	c.Replica = s.cfg.ReplicaName()
	c.SpoolMaxBytes = int64(s.cfg.Audit.SpoolMaxMB) << 20
	return nil
}

// closeAuditDB closes the database the shared audit chain was opened on.
func (s *Server) closeAuditDB() {
	if s.auditDB != nil {
		s.auditDB.Close()
		s.auditDB = nil
	}
}
