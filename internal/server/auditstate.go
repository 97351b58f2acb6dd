package server

import (
	"context"
	"crypto/ed25519"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// auditSigningKey returns the key that signs the audit checkpoints: the
// file audit.key_file names; else, with the shared chain (state.postgres),
// the one key all replicas share in the database; else {audit dir}.key.
func (s *Server) auditSigningKey() (ed25519.PrivateKey, error) {
	if s.pg == nil || s.cfg.Audit.KeyFile != "" {
		return audit.LoadOrCreateKey(s.cfg.AuditKeyFile())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return s.pg.AuditSigningKey(ctx)
}

// sharedAuditChain points c at the replicas' shared audit chain when
// state.postgres is configured (s.pg, opened by openState), and leaves the
// file log otherwise: every replica appends to one chain in the database,
// names itself in its records, and spools to {audit dir}/spool while the
// database cannot be reached.
func (s *Server) sharedAuditChain(c *audit.Config) error {
	if s.pg == nil {
		return nil
	}
	c.Chain = s.pg.AuditChain()
	c.Replica = s.cfg.ReplicaName()
	c.SpoolMaxBytes = int64(s.cfg.Audit.SpoolMaxMB) << 20
	return nil
}
