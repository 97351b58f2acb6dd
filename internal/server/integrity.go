package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/metrics"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/storage"
	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/tombstone"
)

// integrityState holds the checks of stored files and the purges.
type integrityState struct {
	guard   *integrity.Guard   // the serve path's check (through the memory cache)
	scrub   *integrity.Checker // the background scrub's (reads the store itself)
	tombs   *tombstone.Set
	metrics *metrics.Integrity

	// known holds the tombstone keys already audited, so that the watcher
	// audits purges made from the command line once, and not those made
	// through the admin API (audited by the handler).
	mu    sync.Mutex
	known map[string]bool
}

// buildIntegrity makes the serve-path guard, the scrub's checker and the
// tombstones. verifier is nil when the checksum database is off. The
// tombstones read the store itself, not the memory cache, so that a purge
// from the command line is seen at the next request.
// tombstoneFresh is how long a replica on an object store reuses a
// module's tombstone listing.
const tombstoneFresh = 2 * time.Second

func (s *Server) buildIntegrity(store storage.Store, cached *storage.Cache, verifier integrity.Source) {
	sources := []integrity.Source{verifier, integrity.LedgerSource{Ledger: s.ledger}}
	if verifier == nil {
		sources = sources[1:]
	}
	scratch := filepath.Join(s.cfg.DataDir, "tmp")
	tombs := tombstone.New(store)
	if s.cfg.Storage.Type == config.StorageTypeS3 {
		// A listing is a round trip to the object store: cache hits
		// would each make one. Other replicas' purges take effect within
		// tombstoneFresh instead of at the next request.
		tombs = tombstone.NewCached(store, tombstoneFresh)
	}
	in := &integrityState{tombs: tombs, metrics: s.metrics.NewIntegrity(), known: make(map[string]bool)}
	in.guard = integrity.NewGuard(integrity.GuardConfig{
		Checker: &integrity.Checker{Store: cached, Sources: sources, ScratchDir: scratch},
		OnCorrupt: func(f integrity.Finding) {
			in.metrics.CorruptServed(f.File)
			s.log.Error("stored file is corrupt; taken out of service", "key", f.Key, "reason", f.Reason, "action", f.Action)
		},
	})
	in.scrub = &integrity.Checker{Store: store, Evict: cached, Sources: sources, ScratchDir: scratch}
	s.integrity = in
}

// repair fetches a file again through the mirror's fill, which verifies
// it before storing it.
func (s *Server) repair(ctx context.Context, path, version, key string) error {
	f, err := s.mirror.File(ctx, path, version, key, mirror.Options{})
	if err != nil {
		return err
	}
	return f.Body.Close()
}

// runScrub is the background scrub (storage.scrub_interval).
func (s *Server) runScrub(ctx context.Context) {
	integrity.Scrub(ctx, integrity.ScrubConfig{
		Checker:  s.integrity.scrub,
		Interval: s.cfg.Storage.ScrubInterval.Duration,
		Repair:   s.repair,
		Recorded: s.ledger.Records,
		Logger:   s.log,
		OnFile:   func(f integrity.Finding) { s.integrity.metrics.Scrubbed(f.File, string(f.Status)) },
	})
}

// servePurge answers DELETE /admin/modules/{module}[@{version}]
// (?reason=...&allow_refetch=true), with the admin scope: see
// tombstone.Purge. The answer is the tombstone.Result as JSON.
func (s *Server) servePurge(w http.ResponseWriter, r *http.Request) {
	id := auth.FromContext(r.Context())
	if err := s.authn.Authorize(id, auth.Admin, ""); err != nil {
		httperr.Write(w, r, err)
		return
	}
	path, version, err := tombstone.Parse(r.PathValue("module"))
	if err != nil {
		httperr.Write(w, r, fmt.Errorf("%w: %w", httperr.ErrBadRequest, err))
		return
	}
	allow := false
	if v := r.URL.Query().Get("allow_refetch"); v != "" {
		if allow, err = strconv.ParseBool(v); err != nil {
			httperr.Write(w, r, fmt.Errorf("%w: allow_refetch=%q is not true or false", httperr.ErrBadRequest, v))
			return
		}
	}
	req := tombstone.Request{Module: path, Version: version, Reason: r.URL.Query().Get("reason"), By: id.Name, AllowRefetch: allow}
	// Through the memory cache, so this process forgets the files too;
	// under the watcher's lock, so that it does not audit this purge again.
	in := s.integrity
	in.mu.Lock()
	res, err := tombstone.Purge(r.Context(), s.mirror.Store(), in.tombs, req)
	if key, kerr := tombstone.Key(path, version); err == nil && kerr == nil {
		if res.Tombstoned {
			in.known[key] = true
		} else {
			delete(in.known, key)
		}
	}
	in.mu.Unlock()
	if err != nil {
		httperr.Write(w, r, err)
		return
	}
	in.metrics.Purged()
	s.auditAdmin(r.Context(), "module.purge", purgeDetail(req, res))
	s.log.Info("purged", "module", path, "version", version, "allow_refetch", allow, "removed", len(res.Removed), "user", id.Name)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(res)
}

// purgeDetail is the audit record's text for a purge.
func purgeDetail(req tombstone.Request, res tombstone.Result) string {
	what := req.Module
	if req.Version != "" {
		what += "@" + req.Version
	}
	d := fmt.Sprintf("%s: removed %d files", what, len(res.Removed))
	if req.AllowRefetch {
		d += ", may be fetched again"
	} else {
		d += ", tombstoned"
	}
	if req.Reason != "" {
		d += "; reason: " + req.Reason
	}
	return d
}

// tombstoneWatchInterval is how often the server looks for purges made
// from the command line, to audit them.
const tombstoneWatchInterval = 2 * time.Second

// watchTombstones audits the purges made by other processes (`modgate
// purge` on the command line, another replica's admin API): every
// tombstone that appears or disappears in the store is written to the
// audit log once, as the token watcher does for tokens. (Refusing purged
// versions does not wait for this: the mirror reads the tombstones on
// every request.)
func (s *Server) watchTombstones(ctx context.Context) {
	in := s.integrity
	// scan diffs the store's tombstones with the known ones, under the
	// lock the admin handler holds while it purges.
	scan := func(audit bool) {
		in.mu.Lock()
		all, err := in.tombs.All(ctx)
		if err != nil {
			in.mu.Unlock()
			if ctx.Err() == nil {
				s.log.Warn("reading tombstones failed", "err", err)
			}
			return
		}
		var events []string
		for k, tomb := range all {
			if !in.known[k] {
				in.known[k] = true
				events = append(events, tombDetail(tomb, "purged, tombstoned"))
			}
		}
		for k := range in.known {
			if _, ok := all[k]; !ok {
				delete(in.known, k)
				events = append(events, strings.TrimPrefix(k, tombstone.Prefix)+": tombstone lifted (purged with --allow-refetch)")
			}
		}
		in.mu.Unlock()
		if !audit {
			return
		}
		for _, e := range events {
			s.log.Info("purge made by another process", "detail", e)
			s.auditAdmin(context.Background(), "module.purge", e+" (command line or another replica)")
		}
	}
	scan(false) // what was there at start was audited when it was made
	t := time.NewTicker(tombstoneWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			scan(true)
		}
	}
}

func tombDetail(t tombstone.Tombstone, what string) string {
	d := t.Module
	if t.Version != "" {
		d += "@" + t.Version
	}
	d += ": " + what
	if t.By != "" {
		d += " by " + t.By
	}
	if t.Reason != "" {
		d += "; reason: " + t.Reason
	}
	return d
}

// sumdbSource is the checksum-database verifier as an integrity.Source:
// a version the database does not know is one nothing will vouch for.
type sumdbSource struct{ v *sumdb.Verifier }

func (s sumdbSource) Covers(path string) bool { return s.v.Covers(path) }

func (s sumdbSource) Expected(ctx context.Context, path, version string) (string, string, error) {
	mod, zip, err := s.v.Expected(ctx, path, version)
	if errors.Is(err, sumdb.ErrNotInDB) {
		err = fmt.Errorf("%w: %w", integrity.ErrNoHash, err)
	}
	return mod, zip, err
}
