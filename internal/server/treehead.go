package server

import (
	"context"
	"strings"

	"github.com/modgate/modgate/internal/audit"
)

// actionTreeHead is the audit action of a checksum database tree head the
// verifier verified; Detail holds the signed note.
const actionTreeHead = "sumdb.tree_head"

// auditHeads keeps the verifier's second copy of the verified tree head in
// the audit log (a sumdb.HeadCopy): hash-chained and signed, anchored
// outside the data directory when the operator configured anchors, and
// unaffected by a deleted {data_dir}/sumdb.
type auditHeads struct{ s *Server }

// SaveHead writes the head as an admin record of the server itself.
func (h auditHeads) SaveHead(db string, note []byte) {
	h.s.auditAdmin(context.Background(), actionTreeHead, string(note))
}

// LastHead returns the last head of db in the audit log. The note's
// signature line names its database; the verifier checks the signature.
func (h auditHeads) LastHead(db string) ([]byte, error) {
	if !h.s.cfg.Audit.Enabled {
		return nil, nil
	}
	r, ok, err := audit.Last(h.s.cfg.AuditDir(), func(r audit.Record) bool {
		return r.Action == actionTreeHead && strings.Contains(r.Detail, "\n— "+db+" ")
	})
	if err != nil || !ok {
		return nil, err
	}
	return []byte(r.Detail), nil
}
