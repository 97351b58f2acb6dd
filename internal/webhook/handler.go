// Package webhook receives push and tag events from Gitea, GitLab and GitHub
// and tells modgate which repository changed, so that a new tag is visible at
// once instead of after the list TTL.
//
// Each provider authenticates its deliveries its own way: GitHub signs the
// body with HMAC-SHA256 (X-Hub-Signature-256: sha256=<hex>), Gitea and
// Forgejo too (X-Gitea-Signature: <hex>, newer versions also send the GitHub
// header), and GitLab sends the shared secret itself (X-Gitlab-Token). The
// signature is checked over the raw body before anything in it is parsed, so
// an unsigned request costs a read of at most MaxBody bytes and nothing else.
//
// A Handler answers with the statuses the providers show in their delivery
// logs, each with a one-line body starting "modgate: ":
//
//	202 the event was accepted and onEvent returned
//	200 a signed event modgate has no use for (ping, issues, ...), or a
//	    duplicate of a delivery accepted before (see replay.go)
//	400 not JSON, or no ref or repository URL in it
//	401 signature or token missing or wrong
//	404 unknown provider in the path
//	405 not a POST
//	413 body larger than MaxBody
//	500 onEvent failed (the error itself goes to the log only)
//
// Refusals are written by package httperr, like every route's errors.
//
// The package does not know which modules live in which repository: the
// Event carries every URL form of the repository the payload gives, and
// RepoKey/Event.Matches compare them with a configured source's URL
// regardless of scheme, user, port and ".git".
package webhook

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/httperr"
)

// DefaultMaxBody is the body size limit when Config.MaxBody is zero. Push
// payloads list commits, so a push of many commits is large; 1 MiB holds
// the ones the providers send (they truncate the list themselves).
const DefaultMaxBody = 1 << 20

// An Event is one accepted push or tag event.
type Event struct {
	Provider string // "gitea", "gitlab" or "github"
	// RepoURLs holds every URL of the repository the payload names: clone
	// (HTTP), SSH and web, without duplicates, in that order.
	RepoURLs []string
	Ref      string // full ref, e.g. "refs/tags/v1.2.0" or "refs/heads/main"
	Tag      string // "v1.2.0" when Ref is a tag, else ""
	Deleted  bool   // the ref was deleted
	After    string // the commit the ref points to now; "" when Deleted or not in the payload
	Delivery string // the provider's delivery ID, for logs; may be ""
}

// Config configures a Handler.
type Config struct {
	// Secret is the webhook secret configured at the provider. Required:
	// an endpoint anyone can trigger would let anyone make modgate fetch.
	Secret []byte
	// Logger receives refused deliveries (Warn), accepted events (Info) and
	// onEvent failures (Error). Nil discards.
	Logger *slog.Logger
	// MaxBody bounds the request body; 0 means DefaultMaxBody.
	MaxBody int64
	// DeliveriesFile records accepted deliveries across restarts, so that
	// a replayed one is ignored (see replay.go); "" keeps the record in
	// memory only.
	DeliveriesFile string
	// ReplayWindow is how long a delivery is remembered; 0 means
	// DefaultReplayWindow. MaxDeliveries bounds how many are; 0 means
	// DefaultMaxDeliveries.
	ReplayWindow  time.Duration
	MaxDeliveries int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Deliveries, when set, remembers deliveries where every replica
	// sees them, instead of DeliveriesFile (see DeliveryStore).
	Deliveries DeliveryStore
}

// A Handler serves POST /webhook/{provider}. It is safe for concurrent use.
type Handler struct {
	secret  []byte
	log     *slog.Logger
	maxBody int64
	seen    claimer
	onEvent func(ctx context.Context, ev Event) error
}

// NewHandler returns a Handler that calls onEvent, with the request's context,
// for every accepted event, and answers 202 once it returns nil. onEvent
// should finish within a few seconds (GitHub gives up after ten): refresh
// what changed and leave slow work such as pre-fetching to the background.
func NewHandler(cfg Config, onEvent func(ctx context.Context, ev Event) error) (*Handler, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("webhook: a secret is required")
	}
	if onEvent == nil {
		return nil, errors.New("webhook: onEvent is required")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReplayWindow <= 0 {
		cfg.ReplayWindow = DefaultReplayWindow
	}
	if cfg.MaxDeliveries <= 0 {
		cfg.MaxDeliveries = DefaultMaxDeliveries
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	var seen claimer = storeClaimer{s: cfg.Deliveries, window: cfg.ReplayWindow, now: cfg.Now}
	if cfg.Deliveries == nil {
		if err := ensureDir(cfg.DeliveriesFile); err != nil {
			return nil, fmt.Errorf("webhook deliveries: %w", err)
		}
		d, err := openDeliveries(cfg.DeliveriesFile, cfg.ReplayWindow, cfg.MaxDeliveries, cfg.Now)
		if err != nil {
			return nil, err
		}
		seen = d
	}
	return &Handler{
		secret:  cfg.Secret,
		log:     logger.With("component", "webhook"),
		maxBody: cfg.MaxBody,
		seen:    seen,
		onEvent: onEvent,
	}, nil
}

// ServeHTTP handles one delivery. The provider is r.PathValue("provider")
// when the route names it so, else the last element of the URL path.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httperr.Write(w, r, fmt.Errorf("webhooks must be POST requests: %w", httperr.ErrMethod))
		return
	}
	name := r.PathValue("provider")
	if name == "" {
		name = path.Base(r.URL.Path)
	}
	p, ok := providerNamed(name)
	if !ok {
		httperr.Write(w, r, &refusal{fmt.Sprintf("unknown webhook provider %q (want gitea, gitlab or github)", name), fs.ErrNotExist})
		return
	}
	log := h.log.With("provider", name, "delivery", p.delivery(r.Header))

	body, err := readBody(w, r, h.maxBody)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			log.Warn("refused webhook", "status", http.StatusRequestEntityTooLarge, "err", err)
			httperr.Write(w, r, &refusal{fmt.Sprintf("webhook body is larger than %d bytes", h.maxBody), httperr.ErrTooLarge})
			return
		}
		log.Warn("refused webhook", "status", http.StatusBadRequest, "err", err)
		httperr.Write(w, r, &refusal{"reading webhook body failed", httperr.ErrBadRequest})
		return
	}
	if err := p.verify(h.secret, r.Header, body); err != nil {
		// Warn: a wrong secret at the provider or someone probing.
		log.Warn("refused webhook", "status", http.StatusUnauthorized, "err", err)
		httperr.Write(w, r, &refusal{err.Error(), auth.ErrUnauthenticated})
		return
	}

	event := p.event(r.Header)
	ev, err := p.parse(event, payloadJSON(r.Header, body))
	switch {
	case errors.Is(err, errIgnored):
		log.Debug("ignored webhook", "event", event)
		reply(w, http.StatusOK, fmt.Sprintf("ignored %s event %q", name, event))
		return
	case err != nil:
		log.Warn("refused webhook", "status", http.StatusBadRequest, "event", event, "err", err)
		httperr.Write(w, r, &refusal{fmt.Sprintf("invalid %s %q payload: %v", name, event, err), httperr.ErrBadRequest})
		return
	}
	ev.Provider = name
	ev.Delivery = p.delivery(r.Header)

	log = log.With("ref", ev.Ref, "after", ev.After, "deleted", ev.Deleted, "repo", ev.RepoURLs[0])
	keys := deliveryKeys(name, ev.Delivery, body)
	fresh, err := h.seen.claim(keys)
	if err != nil {
		// The delivery is handled; only its record may not survive a
		// restart.
		log.Warn("recording webhook delivery failed", "err", err)
	}
	if !fresh {
		log.Info("ignored duplicate webhook delivery")
		reply(w, http.StatusOK, "duplicate delivery, ignored")
		return
	}
	if err := h.onEvent(r.Context(), ev); err != nil {
		// Let the provider's retry through.
		h.seen.release(keys)
		// The error stays in the log: it may name internal hosts, and the
		// provider shows the answer to everyone who can see the hook.
		log.Error("webhook event failed", "err", err)
		httperr.Write(w, r, fmt.Errorf("handling the %s event for %s: %w", name, ev.Ref, err))
		return
	}
	log.Info("webhook event")
	reply(w, http.StatusAccepted, "accepted "+ev.Ref)
}

// A refusal is a refused delivery: its text is the client's, its class
// gives the status (package httperr).
type refusal struct {
	msg   string
	class error
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.class }

// reply writes a one-line text answer starting "modgate: " for a delivery
// that did not fail.
func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintf(w, "modgate: %s\n", oneLine(msg))
}

// oneLine keeps the first line of s.
func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// readBody reads at most limit bytes of the request body; more is an
// *http.MaxBytesError.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	defer r.Body.Close()
	return io.ReadAll(r.Body)
}

// equalSecret compares a token with the secret in constant time, lengths
// included: both sides are hashed first.
func equalSecret(token string, secret []byte) bool {
	a, b := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
