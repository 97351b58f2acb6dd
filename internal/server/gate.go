package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/goproxy"
	"github.com/modgate/modgate/internal/mirror"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/reqlog"
)

// A gate is the module service as clients see it: every request is first
// authorised (may this identity read this module?), then judged by the
// policy, and only then answered by the mirror. It implements
// goproxy.Service.
//
// Which file the policy refuses (see package policy): a rule against a
// whole module refuses everything; a rule against versions refuses only
// the .zip and removes the version from list and latest answers, because
// the go command reads go.mod files of versions it never builds. Blocked
// files stay stored, so lifting a rule serves them again at once.
type gate struct {
	next   goproxy.Service
	authn  *auth.Authenticator // nil: everyone may read everything
	policy *atomic.Pointer[policy.Engine]
	// observe is told every decision with a match (metrics).
	observe func(d policy.Decision)
}

// authorize checks that the request's identity may read module.
func (g *gate) authorize(ctx context.Context, module string) error {
	if g.authn == nil {
		return nil
	}
	return g.authn.Authorize(auth.FromContext(ctx), auth.Read, module)
}

// engine returns the policy in force, or nil when there are no rules.
func (g *gate) engine() *policy.Engine {
	if g.policy == nil {
		return nil
	}
	return g.policy.Load()
}

// decide runs the policy for s and records the decision (see record).
func (g *gate) decide(ctx context.Context, e *policy.Engine, s policy.Subject) (policy.Decision, error) {
	d := e.Decide(s)
	return d, g.record(ctx, d)
}

// record notes what matched d for the access and audit logs and metrics,
// and returns the decision's error when it blocks. A request records one
// decision, the one that answers it, so that metrics count it once.
func (g *gate) record(ctx context.Context, d policy.Decision) error {
	if len(d.Matches) == 0 {
		return nil
	}
	if g.observe != nil {
		g.observe(d)
	}
	entry := reqlog.From(ctx)
	for _, m := range d.Matches {
		if entry.Rule == "" || (!m.DryRun && m.Action == policy.ActionBlock) {
			entry.Rule = m.Rule
		}
	}
	if h := d.Header(); h != "" {
		entry.Warning = h
	}
	return d.Err()
}

func (g *gate) File(ctx context.Context, path, version, key string, opts mirror.Options) (*mirror.File, error) {
	if err := g.authorize(ctx, path); err != nil {
		return nil, err
	}
	if kindOf(key) == policy.Zip {
		// Before this zip's own fill: the client downloads.
		g.zipAhead(ctx, path, version, key, opts)
	}
	f, err := g.file(ctx, path, version, key, opts)
	if err == nil && kindOf(key) == policy.Info {
		g.zipAhead(ctx, path, version, key, opts)
	}
	return f, err
}

// file answers a request File has authorised.
func (g *gate) file(ctx context.Context, path, version, key string, opts mirror.Options) (*mirror.File, error) {
	e := g.engine()
	if e == nil {
		return g.next.File(ctx, path, version, key, opts)
	}
	s := policy.Subject{Module: path, Version: version, File: kindOf(key)}
	d := e.Decide(s)
	if s.File == policy.Zip && d.Verdict != policy.Block && unchecked(d, policy.KindCooldown) {
		// Fetch the .info only when a cooldown rule needs its time to
		// judge: a refused module is never fetched from the upstream.
		s.InfoTime = g.infoTime(ctx, path, version, key, opts)
		d = e.Decide(s)
	}
	// The licence is known only once the zip is stored: a zip whose
	// licence is unchecked is decided again after the fetch, and that
	// decision is the one counted, so that a request counts once.
	recheck := s.File == policy.Zip && d.Verdict != policy.Block && unchecked(d, policy.KindLicenses)
	if !recheck {
		if err := g.record(ctx, d); err != nil {
			return nil, err
		}
	}
	f, err := g.next.File(ctx, path, version, key, opts)
	if !recheck {
		return f, err
	}
	if err != nil {
		g.record(ctx, d) // not blocking: the fetch's error is the answer
		return nil, err
	}
	if _, err := g.decide(ctx, e, s); err != nil {
		f.Body.Close()
		return nil, err
	}
	return f, nil
}

// A zipAheader fills zips ahead of the go command (see mirror.InfoServed).
type zipAheader interface {
	InfoServed(client mirror.Client, path, version, infoKey string)
	ZipRequested(client mirror.Client, zipKey string, allow mirror.ZipPolicy)
}

// zipAhead tells the mirror about a client's .info and .zip requests, so
// that it fills zips ahead of a client that downloads them. It is told of
// authorised zip requests and of answered .info requests: a version that
// does not exist, or that the client may not read, starts nothing.
func (g *gate) zipAhead(ctx context.Context, path, version, key string, opts mirror.Options) {
	za, ok := g.next.(zipAheader)
	if !ok || opts.NoFetch {
		return
	}
	e := reqlog.From(ctx)
	client := mirror.Client{Addr: e.ClientIP, Identity: e.Identity}
	switch kindOf(key) {
	case policy.Zip:
		za.ZipRequested(client, key, g)
	case policy.Info:
		za.InfoServed(client, path, version, key)
	}
}

// AllowZip says whether a zip may be fetched ahead (mirror.ZipPolicy): when the policy in
// force would let a client have it without more facts. A zip the policy
// refuses, or whose cooldown needs the version's time, is never fetched
// ahead. The decision is not recorded: the client's own zip request is
// judged and counted as usual.
func (g *gate) AllowZip(path, version string) bool {
	e := g.engine()
	if e == nil {
		return true
	}
	d := e.Decide(policy.Subject{Module: path, Version: version, File: policy.Zip})
	return d.Verdict != policy.Block && !unchecked(d, policy.KindCooldown)
}

// infoTime returns the Time of path@version's .info, fetching it like a
// client would; zero when it cannot be had (the cooldown rule then relies
// on the first-seen time alone).
func (g *gate) infoTime(ctx context.Context, path, version, zipKey string, opts mirror.Options) time.Time {
	f, err := g.next.File(ctx, path, version, strings.TrimSuffix(zipKey, ".zip")+".info", opts)
	if err != nil {
		return time.Time{}
	}
	defer f.Body.Close()
	var in struct{ Time time.Time }
	if json.NewDecoder(io.LimitReader(f.Body, 1<<20)).Decode(&in) != nil {
		return time.Time{}
	}
	return in.Time
}

// maxLicenceFetches bounds the zips one list or latest answer fetches to
// judge licences.
const maxLicenceFetches = 3

// settle decides path@version's zip. When a licence rule cannot judge it
// yet because its zip has never been stored, settle fetches the zip (the
// licence is read from the stored copy) and decides again. A list or
// latest answer uses it for the one version the go command is about to
// take, whose zip it would fetch next anyway; without it that version
// would be listed and then refused, and "go get" would fail instead of
// taking the next allowed version. A failed fetch leaves the licence
// unjudged; the zip request judges it later.
func (g *gate) settle(ctx context.Context, e *policy.Engine, path, escPath, version string, opts mirror.Options) policy.Decision {
	s := policy.Subject{Module: path, Version: version, File: policy.Zip}
	d := e.Decide(s)
	if d.Verdict == policy.Block || !unchecked(d, policy.KindLicenses) {
		return d
	}
	escVer, err := module.EscapeVersion(version)
	if err != nil {
		return d
	}
	f, err := g.next.File(ctx, path, version, escPath+"/@v/"+escVer+".zip", opts)
	if err != nil {
		return d
	}
	f.Body.Close()
	return e.Decide(s)
}

// allowed returns the versions a list may show (policy.Engine.Filter,
// order kept) and the one the go command would take from them
// (policy.Highest, "" for none), settling licences on the way: a
// candidate whose licence turns out to be refused drops out and the next
// one is tried, up to maxLicenceFetches times.
func (g *gate) allowed(ctx context.Context, e *policy.Engine, path, escPath string, versions []string, opts mirror.Options) (kept []string, best string) {
	kept = e.Filter(path, versions)
	for range maxLicenceFetches {
		best = policy.Highest(kept)
		if best == "" || g.settle(ctx, e, path, escPath, best, opts).Verdict != policy.Block {
			return kept, best
		}
		kept = slices.DeleteFunc(kept, func(v string) bool { return v == best })
	}
	return kept, policy.Highest(kept)
}

// unchecked reports whether a rule of kind could not judge d for lack of
// information (a licence before the zip is stored, an age without a time).
func unchecked(d policy.Decision, kind policy.RuleKind) bool {
	for _, ev := range d.Rules {
		if ev.Kind == kind && ev.Outcome == policy.OutcomeNotChecked {
			return true
		}
	}
	return false
}

func (g *gate) List(ctx context.Context, path, escPath string, opts mirror.Options) (*mirror.Answer, error) {
	if err := g.authorize(ctx, path); err != nil {
		return nil, err
	}
	e := g.engine()
	if e == nil {
		return g.next.List(ctx, path, escPath, opts)
	}
	if _, err := g.decide(ctx, e, policy.Subject{Module: path, File: policy.List}); err != nil {
		return nil, err
	}
	a, err := g.next.List(ctx, path, escPath, opts)
	if err != nil {
		return nil, err
	}
	versions := strings.Fields(string(a.Data))
	kept, _ := g.allowed(ctx, e, path, escPath, versions, opts)
	if len(kept) == len(versions) {
		return a, nil
	}
	filtered := *a
	filtered.Data = []byte(strings.Join(kept, "\n"))
	if len(kept) > 0 {
		filtered.Data = append(filtered.Data, '\n')
	}
	return &filtered, nil
}

func (g *gate) Latest(ctx context.Context, path, escPath string, opts mirror.Options) (*mirror.Answer, error) {
	if err := g.authorize(ctx, path); err != nil {
		return nil, err
	}
	e := g.engine()
	if e == nil {
		return g.next.Latest(ctx, path, escPath, opts)
	}
	if _, err := g.decide(ctx, e, policy.Subject{Module: path, File: policy.Latest}); err != nil {
		return nil, err
	}
	a, err := g.next.Latest(ctx, path, escPath, opts)
	if err != nil {
		return nil, err
	}
	var in struct{ Version string }
	if json.Unmarshal(a.Data, &in) != nil {
		return a, nil // the mirror checked it; nothing to judge
	}
	latest := g.settle(ctx, e, path, escPath, in.Version, opts)
	if latest.Verdict != policy.Block {
		return a, nil
	}
	// The upstream's latest is blocked: answer with the highest allowed
	// version instead, as the go command would pick from a filtered list.
	list, err := g.next.List(ctx, path, escPath, opts)
	if err != nil {
		return nil, latest.Err()
	}
	_, v := g.allowed(ctx, e, path, escPath, strings.Fields(string(list.Data)), opts)
	if v == "" {
		return nil, fmt.Errorf("no version of %s is allowed: %w", path, latest.Err())
	}
	escVer, err := module.EscapeVersion(v)
	if err != nil {
		return nil, err
	}
	f, err := g.next.File(ctx, path, v, escPath+"/@v/"+escVer+".info", opts)
	if err != nil {
		return nil, err
	}
	defer f.Body.Close()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, io.LimitReader(f.Body, 1<<20)); err != nil {
		return nil, err
	}
	return &mirror.Answer{Data: buf.Bytes(), Result: a.Result, Fetched: a.Fetched}, nil
}

func (g *gate) Query(ctx context.Context, path, key string, opts mirror.Options) (*mirror.Answer, error) {
	if err := g.authorize(ctx, path); err != nil {
		return nil, err
	}
	if e := g.engine(); e != nil {
		// A query resolves to a version whose .info the go command may
		// read whatever the version rules say; only a module-wide rule
		// refuses it.
		if _, err := g.decide(ctx, e, policy.Subject{Module: path, File: policy.Info}); err != nil && moduleWide(err) {
			return nil, err
		}
	}
	return g.next.Query(ctx, path, key, opts)
}

// moduleWide reports whether a policy error refuses a whole module.
func moduleWide(err error) bool {
	var be *policy.BlockedError
	if !errors.As(err, &be) {
		return false
	}
	for _, m := range be.Decision.Matches {
		if m.ModuleWide && !m.DryRun && m.Action == policy.ActionBlock {
			return true
		}
	}
	return false
}

// kindOf returns the policy kind of a versioned file key.
func kindOf(key string) policy.Kind {
	switch {
	case strings.HasSuffix(key, ".zip"):
		return policy.Zip
	case strings.HasSuffix(key, ".mod"):
		return policy.Mod
	}
	return policy.Info
}
