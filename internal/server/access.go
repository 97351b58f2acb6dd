package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/goproxy"
	"github.com/modgate/modgate/internal/httperr"
	"github.com/modgate/modgate/internal/reqlog"
)

// Access control and the audit log, wired here. Every request passes, in
// order: panic recovery, the request log (which writes the audit record
// when the request ends), authentication (auth.Middleware puts an
// Identity in the context or refuses), the audit gate (503 while a
// fail-closed audit log cannot be written), and the routes, where the
// module service authorises each module (gate.authorize).
//
// One audit record is written per module file, list, latest and sumdb
// request (served, refused or failed) and per admin action: tokens created
// or revoked (through the admin API, or by `modgate token` in another
// process, noticed when the token file is reloaded), policy reloads, and
// moved tags.

// tokenReloadInterval is how often the token file is checked for changes
// made by `modgate token`, so that they are audited without waiting for a
// request that carries a token.
const tokenReloadInterval = 10 * time.Second

// buildAccess opens the token store, the authenticator, the TLS
// configuration and the audit log.
func (s *Server) buildAccess() error {
	cfg := s.cfg
	if cfg.Audit.Enabled {
		if err := s.openAudit(); err != nil {
			return err
		}
	}
	acfg, err := cfg.Auth.AuthConfig()
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if acfg.Tokens {
		s.tokens, err = auth.OpenTokens(cfg.AuthDir(), auth.TokensOptions{OnChange: s.tokenChanged, Store: s.tokenStore()})
		if err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	s.authn, err = auth.New(acfg, auth.Deps{
		Tokens:        s.tokens,
		Logger:        s.log.With("component", "auth"),
		OnAdminAction: s.auditAdmin,
		OnRefused:     s.authRefused,
		WriteError:    httperr.Write,
	})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if cfg.TLS.Enabled() {
		opts, err := cfg.TLS.Options()
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		opts.Logger = s.log.With("component", "tls")
		s.tls, err = auth.ServerTLS(opts)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		s.tls.NextProtos = []string{"h2", "http/1.1"}
	}
	return nil
}

// openAudit opens the audit log with its signing (and pseudonym) keys.
func (s *Server) openAudit() error {
	a := s.cfg.Audit
	dir := s.cfg.AuditDir()
	key, err := s.auditSigningKey()
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	var anchors []audit.Anchor
	if a.AnchorFile != "" {
		anchors = append(anchors, audit.FileAnchor{Path: a.AnchorFile})
	}
	if a.AnchorSyslog != "" {
		anchor, err := audit.NewSyslogAnchor(a.AnchorSyslog)
		if err != nil {
			return fmt.Errorf("audit.anchor_syslog: %w", err)
		}
		anchors = append(anchors, anchor)
	}
	c := audit.Config{
		Dir:                dir,
		MaxSize:            int64(a.MaxSizeMB) << 20,
		MaxAge:             a.MaxAge.Duration,
		Retention:          a.Retention.Duration,
		CheckpointInterval: a.CheckpointInterval.Duration,
		FailClosed:         a.FailClosed,
		Buffer:             a.Buffer,
		Pseudonymize:       a.Pseudonymize,
		SigningKey:         key,
		Anchors:            anchors,
		OnAnchorError:      func(string, error) { s.metrics.AuditError("anchor") },
		Logger:             s.log, // audit adds its component
		OnError: func(err error) {
			kind := "unwritable"
			if errors.Is(err, audit.ErrDropped) {
				kind = "dropped"
			}
			s.metrics.AuditError(kind)
		},
	}
	if a.Pseudonymize {
		file := a.PseudonymKeyFile
		if file == "" {
			file = audit.PseudonymKeyPath(dir)
		}
		if c.PseudonymKey, err = audit.LoadOrCreateSecret(file); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if err := s.sharedAuditChain(&c); err != nil {
		return err
	}
	s.audit, err = audit.Open(c)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// withAccess wraps the routes in authentication and the audit gate.
func (s *Server) withAccess(h http.Handler) http.Handler {
	gated := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := reqlog.From(r.Context())
		id := auth.FromContext(r.Context())
		e.Identity = id.Name
		if id.ClientIP.IsValid() {
			e.ClientIP = id.ClientIP.String()
		}
		if s.audit != nil && audited(r.URL.Path) {
			if err := s.audit.Admit(); err != nil {
				// The client learns what is wrong, not where: the cause
				// (a path, an errno) stays in the logs.
				httperr.Write(w, r, fmt.Errorf("%w, and this server refuses to serve without a record (tell the operator, request id %s)", audit.ErrUnwritable, e.ID))
				e.Err = fmt.Errorf("refused while the audit log cannot be written: %w", err)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
	return s.authn.Middleware(gated)
}

// audited reports whether requests for path get an audit record: module
// requests and the checksum database.
func audited(path string) bool {
	return isModuleRequest(path) || strings.HasPrefix(path, "/sumdb/")
}

// authRefused records a request the authenticator refused.
func (s *Server) authRefused(r *http.Request, id auth.Identity, status int, err error) {
	s.metrics.AuthRefusal(status)
	e := reqlog.From(r.Context())
	e.Identity = id.Name
	if id.ClientIP.IsValid() {
		e.ClientIP = id.ClientIP.String()
	}
	e.Err = err
}

// auditRequest writes the audit record of a finished request (a
// reqlog.Done hook).
func (s *Server) auditRequest(r *http.Request, e *reqlog.Entry, status int, bytes int64, d time.Duration) {
	if s.audit == nil || !audited(r.URL.Path) {
		return
	}
	if status == http.StatusServiceUnavailable && s.audit.Admit() != nil {
		// Refused because the log cannot be written: a record would only
		// wait for a full buffer and be dropped (and counted as such).
		return
	}
	file, mod, version := e.Artifact, e.Module, e.Version
	if file == "" || file == "other" {
		// Refused before the protocol handler parsed it (authentication).
		file, mod, version = "other", "", ""
		if req, err := goproxy.ParseRequest(strings.TrimPrefix(r.URL.Path, "/")); err == nil {
			file, mod, version = req.Kind.String(), req.Module, req.Version
		} else if strings.HasPrefix(r.URL.Path, "/sumdb/") {
			file = "sumdb"
		}
	}
	rec := audit.Record{
		Time:      time.Now().Add(-d),
		RequestID: e.ID,
		Identity:  e.Identity,
		ClientIP:  e.ClientIP,
		UserAgent: r.UserAgent(),
		Module:    mod,
		Version:   version,
		File:      file,
		Result:    resultOf(status, e),
		Rule:      e.Rule,
		Bytes:     bytes,
		Upstream:  e.Upstream,
		Duration:  d,
	}
	if rec.ClientIP == "" {
		rec.ClientIP = remoteIP(r)
	}
	if e.Err != nil {
		rec.Detail = e.Err.Error()
	} else if e.Warning != "" {
		rec.Detail = "warning: " + e.Warning
	}
	s.audit.Write(rec)
}

// resultOf classifies a finished request for the audit log.
func resultOf(status int, e *reqlog.Entry) audit.Result {
	switch {
	case status < 400 && e.Cache == "miss":
		return audit.ResultMiss
	case status < 400 && e.Cache == "stale":
		return audit.ResultStale
	case status < 400:
		return audit.ResultHit
	case status == http.StatusUnauthorized:
		return audit.ResultUnauthorized
	case errors.Is(e.Err, auth.ErrHidden):
		return audit.ResultForbidden
	case status == http.StatusForbidden && e.Rule != "":
		return audit.ResultBlocked
	case status == http.StatusForbidden || status == http.StatusTooManyRequests:
		return audit.ResultForbidden
	case status == http.StatusNotFound || status == http.StatusGone:
		return audit.ResultNotFound
	}
	return audit.ResultError
}

// remoteIP is the request's peer address without the port.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditAdmin records an admin action made by the request's identity (or
// by the server itself, with a background context).
func (s *Server) auditAdmin(ctx context.Context, action, detail string) {
	if s.audit == nil {
		return
	}
	rec := audit.Record{Result: audit.ResultAdmin, Action: action, Detail: detail, Identity: "modgate"}
	if id := auth.FromContext(ctx); id.Name != "" {
		rec.Identity = id.Name
		if id.ClientIP.IsValid() {
			rec.ClientIP = id.ClientIP.String()
		}
	}
	if e := reqlog.From(ctx); e.ID != "" {
		rec.RequestID = e.ID
	}
	s.audit.Write(rec)
}

// tokenChanged records a token created or revoked by another process
// (`modgate token` on the command line).
func (s *Server) tokenChanged(c auth.TokenChange) {
	action := auth.ActionTokenRevoke
	if c.Action == auth.ChangeCreated {
		action = auth.ActionTokenCreate
	}
	s.log.Info("token changed from the command line", "action", action, "token", c.Token.ID, "name", c.Token.Name)
	s.auditAdmin(context.Background(), action, fmt.Sprintf("id=%s name=%s scopes=%s (command line)", c.Token.ID, c.Token.Name, auth.FormatScopes(c.Token.Scopes)))
}

// watchTokens reloads the token file periodically so that command-line
// changes are audited promptly.
func (s *Server) watchTokens(ctx context.Context) {
	if s.tokens == nil {
		return
	}
	t := time.NewTicker(tokenReloadInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.tokens.Reload(); err != nil {
				s.log.Warn("reloading tokens failed", "err", err)
			}
		}
	}
}

// tlsListener wraps ln in TLS when the server has a certificate.
func (s *Server) tlsListener(ln net.Listener) net.Listener {
	if s.tls == nil {
		return ln
	}
	return tls.NewListener(ln, s.tls)
}
