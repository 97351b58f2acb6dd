package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/tombstone"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

// retries is upstream.retries as the upstream package counts it: the
// configuration's 0 means none, the package's 0 means its default.
func retries(cfg config.Config) int {
	if cfg.Upstream.Retries == 0 {
		return -1
	}
	return cfg.Upstream.Retries
}

// Maintenance is what the maintenance commands (`modgate verify`, `modgate
// purge`) need of a data directory: its store, the checksum database and
// the ledger as sources of expected hashes, the tombstones, and the
// mirror's fill path for repairs. It is built like a server's (the same
// configuration, upstreams and private sources) but serves nothing, takes
// no part of the running server's state it could disturb: its checksum
// database client starts from a copy of the server's verified tree head,
// its downloads go to a scratch directory of its own, and it writes no
// audit log (a purge from the command line records itself in its
// tombstone; one through the admin API is audited by the server).
type Maintenance struct {
	Store      storage.Store
	Tombstones *tombstone.Set
	Checker    *integrity.Checker

	cfg      config.Config
	log      *slog.Logger
	ledger   *ledger.Ledger
	verifier *sumdb.Verifier
	// mirror is built by the first Repair (repairs run concurrently).
	mirrorOnce sync.Once
	mirror     *mirror.Mirror
	mirrorErr  error
	scratch    string       // removed by Close
	pg         *postgres.DB // the shared state's database, when configured
}

// OpenMaintenance opens cfg's data directory for maintenance. cfg must
// have been resolved and validated. Close it when done.
func OpenMaintenance(cfg config.Config, log *slog.Logger) (_ *Maintenance, err error) {
	m := &Maintenance{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	store, err := OpenStore(context.Background(), cfg, log)
	if err != nil {
		return nil, err
	}
	m.Store = store
	m.Tombstones = tombstone.New(store)
	m.scratch, err = os.MkdirTemp(cfg.DataDir, "maintenance-")
	if err != nil {
		return nil, fmt.Errorf("creating scratch directory: %w", err)
	}
	// The server's ledger: with shared state the database's (which every
	// replica records into atomically, so a repair may record too); else
	// the server's own file, only read here: verification never records,
	// and a repair's fill checks against the records.
	if err := m.openState(); err != nil {
		return nil, err
	}
	if m.pg != nil {
		m.ledger, err = ledger.Open(ledger.Config{Backend: m.pg.Ledger(), Patterns: []string{"*"}, Logger: log})
	} else {
		m.ledger, err = ledger.OpenReadOnly(ledger.Config{Dir: filepath.Join(cfg.DataDir, "ledger"), Patterns: []string{"*"}, Logger: log})
	}
	if err != nil {
		return nil, fmt.Errorf("opening the ledger of private module hashes: %w", err)
	}
	db, err := sumdb.ParseGOSUMDB(cfg.SumDB.GOSUMDB)
	if err != nil {
		return nil, fmt.Errorf("sumdb.gosumdb: %w", err)
	}
	sources := []integrity.Source{integrity.LedgerSource{Ledger: m.ledger}}
	if !db.Off() {
		chain, err := m.chain(db)
		if err != nil {
			return nil, err
		}
		state := filepath.Join(m.scratch, "sumdb")
		if err := copyDir(filepath.Join(cfg.DataDir, "sumdb"), state); err != nil {
			return nil, fmt.Errorf("copying the verified checksum database state: %w", err)
		}
		m.verifier, err = sumdb.NewVerifier(sumdb.VerifierConfig{
			DB:       db,
			NoSumDB:  m.noSumDB(),
			Source:   chain,
			Store:    store,
			StateDir: state,
			// With shared state the tree head is the replicas' one, which
			// only moves forward after a proof, whoever verifies.
			HeadStore: m.headStore(),
			Logger:    log,
		})
		if err != nil {
			return nil, fmt.Errorf("checksum database: %w", err)
		}
		sources = append([]integrity.Source{sumdbSource{m.verifier}}, sources...)
	}
	m.Checker = &integrity.Checker{Store: store, Sources: sources, ScratchDir: m.scratch}
	return m, nil
}

// openState connects to the shared state's database when one is
// configured (its schema must be there: the servers migrate it).
func (m *Maintenance) openState() error {
	if !m.cfg.PostgresEnabled() {
		return nil
	}
	db, err := openSharedState(m.cfg, m.log, false)
	if err != nil {
		return err
	}
	m.pg = db
	return nil
}

// headStore is the replicas' shared tree head; nil keeps the state copy.
func (m *Maintenance) headStore() sumdb.HeadStore {
	if m.pg == nil {
		return nil
	}
	return m.pg.Heads()
}

func (m *Maintenance) noSumDB() []string {
	return append(slices.Clone(m.cfg.SumDB.NoSumDB), m.cfg.Private.Patterns()...)
}

// chain builds the upstream chain as the server does, with the
// database's URL when it has one.
func (m *Maintenance) chain(db sumdb.DB) (*upstream.Chain, error) {
	var sumdbURLs map[string]string
	if db.URL != "" {
		sumdbURLs = map[string]string{db.Name: db.URL}
	}
	client := upstream.NewHTTPClient(upstream.HTTPConfig{
		DialTimeout:           m.cfg.Upstream.DialTimeout.Duration,
		ResponseHeaderTimeout: m.cfg.Upstream.ResponseTimeout.Duration,
		IdleTimeout:           m.cfg.Upstream.IdleTimeout.Duration,
		RedirectHosts:         m.cfg.Upstream.RedirectHosts,
	})
	chain, err := upstream.Build(m.cfg.Upstream.GOPROXY, upstream.BuildOptions{
		Self:      []string{m.cfg.Listen, m.cfg.PublicURL},
		Client:    client,
		Proxy:     upstream.ProxyOptions{Retries: retries(m.cfg), Logger: m.log},
		SumdbURLs: sumdbURLs,
	})
	if err != nil {
		return nil, fmt.Errorf("upstream.goproxy: %w", err)
	}
	return chain, nil
}

// Repair fetches path@version's file (key) again through the mirror's
// fill, which verifies it against the checksum database or the ledger
// before storing it. It is an integrity.RepairFunc.
func (m *Maintenance) Repair(ctx context.Context, path, version, key string) error {
	m.mirrorOnce.Do(func() { m.mirrorErr = m.buildMirror() })
	if m.mirrorErr != nil {
		return m.mirrorErr
	}
	f, err := m.mirror.File(ctx, path, version, key, mirror.Options{})
	if err != nil {
		return err
	}
	return f.Body.Close()
}

func (m *Maintenance) buildMirror() error {
	db, err := sumdb.ParseGOSUMDB(m.cfg.SumDB.GOSUMDB)
	if err != nil {
		return err
	}
	chain, err := m.chain(db)
	if err != nil {
		return err
	}
	client := upstream.NewHTTPClient(upstream.HTTPConfig{DialTimeout: m.cfg.Upstream.DialTimeout.Duration, ResponseHeaderTimeout: m.cfg.Upstream.ResponseTimeout.Duration})
	// Git mirrors of its own: the server's may be fetching right now.
	gitCfg := m.cfg
	gitCfg.Private.GitDir = filepath.Join(m.scratch, "git")
	gitSources, err := buildGitSources(gitCfg, client, git.NewLimiter(m.cfg.Private.MaxConcurrentGit), m.log)
	if err != nil {
		return err
	}
	direct, err := upstream.NewDirect(client, upstream.DirectOptions{})
	if err != nil {
		return err
	}
	var verifier mirror.Checker
	if m.verifier != nil {
		verifier = m.verifier
	}
	mm, err := mirror.New(mirror.Config{
		Store:      m.Store,
		Upstream:   chain,
		Direct:     privateRouter{git: gitSources, direct: direct},
		NoProxy:    append(slices.Clone(m.cfg.Upstream.NoProxy), m.cfg.Private.Patterns()...),
		Checker:    mirror.CheckFirst(verifier, m.ledger),
		ScratchDir: filepath.Join(m.scratch, "fill"),
		Logger:     m.log,
		Tombstones: m.Tombstones,
	})
	if err != nil {
		return err
	}
	m.mirror = mm
	return nil
}

// Recorded lists the files the ledger says were served.
func (m *Maintenance) Recorded(fn func(path, version, file string)) { m.ledger.Records(fn) }

// Close releases everything and removes the scratch directory.
func (m *Maintenance) Close() error {
	var errs []error
	if m.mirror != nil {
		errs = append(errs, m.mirror.Close())
	}
	if m.verifier != nil {
		errs = append(errs, m.verifier.Close())
	}
	if m.ledger != nil {
		errs = append(errs, m.ledger.Close())
	}
	if m.pg != nil {
		m.pg.Close()
	}
	if m.scratch != "" {
		errs = append(errs, os.RemoveAll(m.scratch))
	}
	return errors.Join(errs...)
}

// copyDir copies the regular files of src (recursively) to dst; a missing
// src copies nothing.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if p == src && errors.Is(err, os.ErrNotExist) {
				return filepath.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
