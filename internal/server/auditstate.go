package server

import (
	"github.com/modgate/modgate/internal/audit"
)

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
