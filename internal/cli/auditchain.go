package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/state/postgres"
)

// An auditSource is where `modgate audit` reads the log: the files in dir,
// or, when state.postgres names a database and --dir is not given, the
// cluster's shared chain in it.
type auditSource struct {
	cfg   config.Config
	dir   string
	chain audit.Chain
	db    *postgres.DB // with chain
	close func()
}

// auditReadTimeout bounds how long verify or query may read the database.
const auditReadTimeout = 10 * time.Minute

// open finds the log: the shared chain (see auditSource), else the
// directory as location finds it. It prints why it cannot and returns the
// exit status for that.
func (f auditFlags) open(deps auditDeps, stderr io.Writer) (auditSource, int, bool) {
	if *f.dir == "" {
		cfg, err := auditConfig(*f.config, *f.dataDir, false, deps)
		if err == nil && cfg.PostgresEnabled() {
			dsn, err := cfg.PostgresDSN()
			if err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", f.fs.Name(), err)
				return auditSource{}, 2, false
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := postgres.Open(ctx, dsn, slog.New(slog.DiscardHandler))
			if err != nil {
				fmt.Fprintf(stderr, "%s: reading the shared audit chain: %v\n", f.fs.Name(), err)
				return auditSource{}, 1, false
			}
			return auditSource{cfg: cfg, dir: cfg.AuditDir(), chain: db.AuditChain(), db: db, close: db.Close}, 0, true
		}
	}
	cfg, dir, ok := f.location(deps, stderr)
	if !ok {
		return auditSource{}, 2, false
	}
	return auditSource{cfg: cfg, dir: dir, close: func() {}}, 0, true
}

// sharedKey returns the public key kept in the database, when the chain
// is shared, its replicas keep their key there (no audit.key_file) and no
// key file was given (keyFile); ok is false otherwise.
func (s auditSource) sharedKey(keyFile string) (ed25519.PublicKey, bool, error) {
	if s.db == nil || keyFile != "" || s.cfg.Audit.KeyFile != "" {
		return nil, false, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pub, ok, err := s.db.AuditPublicKey(ctx)
	if err == nil && !ok {
		err = errors.New("no audit signing key in the database yet (table audit_signing_key): no replica has written the chain")
	}
	return pub, err == nil, err
}

func (s auditSource) verify(pub ed25519.PublicKey, opts audit.VerifyOptions) (audit.Report, error) {
	if s.chain == nil {
		return audit.VerifyWith(s.dir, pub, opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditReadTimeout)
	defer cancel()
	return audit.VerifyChain(ctx, s.chain, pub, opts)
}

func (s auditSource) query(f audit.Filter, fn func(audit.Record) error) error {
	if s.chain == nil {
		return audit.Query(s.dir, f, fn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), auditReadTimeout)
	defer cancel()
	return audit.QueryChain(ctx, s.chain, f, fn)
}
