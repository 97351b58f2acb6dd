package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/vulndb"
	"github.com/modgate/modgate/internal/webhook"
)

// Shared state, wired here. With state.postgres set, the state replicas
// must share lives in PostgreSQL instead of files under data_dir (the
// tables of package state/postgres): tokens, the private-module ledger,
// the verified checksum-database tree head, first-seen times, licence
// results, webhook deliveries, fill leases and the synced vulnerability
// database. The replicas tell each other about policy reloads, webhook
// refreshes and new vulnerability database copies with LISTEN/NOTIFY, so
// that a change received by one takes effect on all at once. Without
// state.postgres every accessor below returns nil (or the file-backed
// default) and nothing changes.

// stateStartTimeout bounds connecting and migrating at start.
const stateStartTimeout = time.Minute

// openState connects to the shared state's database, when configured, and
// applies its migrations (under an advisory lock: replicas starting at
// once apply each migration once).
func (s *Server) openState() error {
	if !s.cfg.PostgresEnabled() {
		return nil
	}
	db, err := openSharedState(s.cfg, s.log, true)
	if err != nil {
		return err
	}
	s.pg = db // Close closes it
	s.log.Info("shared state in PostgreSQL")
	return nil
}

// openSharedState connects to the database cfg.state.postgres names, and
// migrates it when migrate is set (serve does; maintenance commands find
// the schema the servers made).
func openSharedState(cfg config.Config, log *slog.Logger, migrate bool) (*postgres.DB, error) {
	dsn, err := cfg.PostgresDSN()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateStartTimeout)
	defer cancel()
	db, err := postgres.Open(ctx, dsn, log)
	if err != nil {
		return nil, fmt.Errorf("state.postgres: %w", err)
	}
	if migrate {
		if err := db.Migrate(ctx); err != nil {
			db.Close()
			return nil, fmt.Errorf("state.postgres: %w", err)
		}
	}
	return db, nil
}

// closeState closes the database after everything that uses it.
func (s *Server) closeState() {
	if s.pg != nil {
		s.pg.Close()
	}
}

// headStore is the verifier's shared tree head store; nil keeps the files.
func (s *Server) headStore() sumdb.HeadStore {
	if s.pg == nil {
		return nil
	}
	return s.pg.Heads()
}

// ledgerBackend is the ledger's shared backend; nil keeps the file.
func (s *Server) ledgerBackend() ledger.Backend {
	if s.pg == nil {
		return nil
	}
	return s.pg.Ledger()
}

// leaser coordinates fills with the other replicas; nil fills alone.
func (s *Server) leaser() mirror.Leaser {
	if s.pg == nil {
		return nil
	}
	return s.pg.Leases(0)
}

// deliveryStore remembers webhook deliveries for all replicas; nil keeps
// the file.
func (s *Server) deliveryStore() webhook.DeliveryStore {
	if s.pg == nil {
		return nil
	}
	return s.pg.Deliveries()
}

// openAges opens the first-seen times of the cooldown rule, shared by all
// replicas or in dir.
func (s *Server) openAges(dir string) (*policy.Ages, error) {
	if s.pg == nil {
		return policy.OpenAges(dir, s.cfg.Policy.Ages.Source(), nil)
	}
	return policy.OpenSharedAges(s.pg.Ages(), s.cfg.Policy.Ages.Source(), nil)
}

// licenseDetector keeps licence results for all replicas, or in dir.
func (s *Server) licenseDetector(dir string) *policy.LicenseDetector {
	if s.pg == nil {
		return policy.NewLicenseDetector(dir, s.openZip)
	}
	return policy.NewSharedLicenseDetector(s.pg.Licenses(), s.openZip)
}

// vulnShared makes replicas sync the vulnerability database one at a time
// and load each other's copy; nil syncs alone.
func (s *Server) vulnShared() vulndb.SharedCopy {
	if s.pg == nil {
		return nil
	}
	return s.pg.VulnDB()
}

// tokenStore is the shared token store; nil keeps the tokens file.
func (s *Server) tokenStore() auth.TokenStore {
	if s.pg == nil {
		return nil
	}
	return s.pg.Tokens()
}

// Triggers of policy reloads that come from the other replicas; they are
// not sent on again.
const (
	fromReplica   = "another replica reloaded it"
	fromReconnect = "notifications from the other replicas may have been missed"
)

// policyReloaded tells the other replicas that this one put a new policy
// in force, so that they read their configuration file again.
func (s *Server) policyReloaded(why string) {
	if s.pg == nil || why == fromReplica || why == fromReconnect {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.pg.Notify(ctx, postgres.ChannelPolicy, why); err != nil {
		s.log.Warn("could not tell the other replicas about the policy reload; they reload on their own file check", "err", err)
	}
}

// webhookReceived handles a webhook delivered to this replica: it tells
// the other replicas to refresh the same repository, then refreshes here.
func (s *Server) webhookReceived(ctx context.Context, ev webhook.Event) error {
	if s.pg != nil {
		if payload, err := json.Marshal(ev); err == nil && len(payload) < 7900 { // NOTIFY's limit is 8000 bytes
			if err := s.pg.Notify(ctx, postgres.ChannelWebhook, string(payload)); err != nil {
				s.log.Warn("could not tell the other replicas about a webhook; they see the change when their list cache expires", "err", err)
			}
		}
	}
	return s.onWebhook(ctx, ev)
}

// listenState acts on the other replicas' notifications until ctx is done.
func (s *Server) listenState(ctx context.Context) {
	if s.pg == nil {
		return
	}
	s.pg.Listen(ctx, []string{postgres.ChannelPolicy, postgres.ChannelWebhook, postgres.ChannelVulnDB}, func(channel, payload string) {
		switch channel {
		case postgres.ChannelVulnDB:
			if s.policy != nil && s.policy.vulns != nil {
				s.background(func(bg context.Context) {
					if err := s.policy.vulns.Pull(bg); err != nil {
						s.log.Warn("loading the vulnerability database another replica synced failed; the next sync retries", "err", err)
					}
				})
			}
		case postgres.ChannelPolicy:
			// Also after a lost connection (empty payload): a reload
			// of an unchanged file changes nothing.
			if s.policy != nil && s.policy.file != "" {
				why := fromReplica
				if payload == "" {
					why = fromReconnect
				}
				s.reloadPolicy(why)
			}
		case postgres.ChannelWebhook:
			if payload == "" {
				return // missed refreshes: list caches expire by themselves
			}
			var ev webhook.Event
			if err := json.Unmarshal([]byte(payload), &ev); err != nil || len(ev.RepoURLs) == 0 {
				s.log.Warn("ignoring a malformed webhook notification", "err", err)
				return
			}
			s.background(func(bg context.Context) {
				if err := s.onWebhook(bg, ev); err != nil {
					s.log.Warn("webhook refresh from another replica failed", "err", err)
				}
			})
		}
	})
}
