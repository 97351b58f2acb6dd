package testenv

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// DefaultSumDBName is the name of an Upstream's checksum database unless
// WithSumDBName says otherwise.
const DefaultSumDBName = "sum.test"

// An Upstream is a fake module proxy on 127.0.0.1 that serves a fixed set of
// module versions over the GOPROXY protocol, together with a checksum
// database for them under /sumdb/<name>/, the way a public mirror does.
//
// It misbehaves on request (SetDown, SetStatus, SetDelay, SetTamper,
// SetTamperMod) and records every request path (Requests, Count). All methods
// are safe for concurrent use, including while requests are being served.
//
// Routes, all GET or HEAD:
//
//	/{escaped path}/@v/list             canonical non-pseudo versions, one a line
//	/{escaped path}/@v/{version}.info   also .mod and .zip
//	/{escaped path}/@latest             highest release, else highest pre-release
//	/sumdb/{name}/supported             200
//	/sumdb/{name}/lookup/..., /latest, /tile/...
//
// Unknown modules and versions, and anything else, answer 404 with a one-line
// text body. Of non-canonical queries only commit hashes are understood: a
// .info request for a hex prefix (7 digits or more) of the Origin.Hash in a
// module's .info file answers that .info, a tagged version's before a
// pseudo-version's (as the go command resolves a commit that has a tag).
// Branch names are not.
type Upstream struct {
	srv      *httptest.Server
	sumdb    string // checksum database name, "" without one
	vkey     string
	skey     string
	sumdbSrv http.Handler
	sumdbDB  *sumdb.TestServer

	mu       sync.Mutex
	mods     map[string]map[string]*Module // path -> version -> module
	down     bool
	delay    time.Duration
	status   map[string]int // URL path prefix -> forced status
	tamper   map[module.Version]bool
	tamperMd map[module.Version]bool
	sums     map[module.Version]string // go.sum lines of modules not served here (AddChecksums)
	log      []string
}

// An UpstreamOption configures NewUpstream.
type UpstreamOption func(*upstreamConfig)

type upstreamConfig struct {
	sumdbName string
	noSumDB   bool
	skey      string
}

// WithSumDBName names the checksum database (default DefaultSumDBName).
func WithSumDBName(name string) UpstreamOption {
	return func(c *upstreamConfig) { c.sumdbName = name }
}

// WithoutSumDB makes the Upstream a proxy that does not proxy a checksum
// database: /sumdb/ answers 404, as some private proxies do. SumDBName and
// VerifierKey then return "".
func WithoutSumDB() UpstreamOption {
	return func(c *upstreamConfig) { c.noSumDB = true }
}

// WithSumDBSignerKey signs the checksum database with skey (see
// SumDBSignerKey) instead of a new key: two Upstreams with the same key
// and other records are a forked database.
func WithSumDBSignerKey(skey string) UpstreamOption {
	return func(c *upstreamConfig) {
		c.skey = skey
		if name, _, ok := strings.Cut(strings.TrimPrefix(skey, "PRIVATE+KEY+"), "+"); ok {
			c.sumdbName = name
		}
	}
}

// forkKey returns skey with its verifier key.
func forkKey(skey string) (string, string, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return "", "", err
	}
	// PRIVATE+KEY+name+hash+base64(algorithm byte, ed25519 seed).
	parts := strings.SplitN(skey, "+", 5)
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize {
		return "", "", fmt.Errorf("not an ed25519 signer key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	return skey, vkey, err
}

// SumDBSignerKey returns the checksum database's signer key, for
// WithSumDBSignerKey.
func (u *Upstream) SumDBSignerKey() string { return u.skey }

// RecordSumDB adds the records of mods to the checksum database in this
// order (a record is otherwise created at its first lookup), to give a
// fork another history.
func (u *Upstream) RecordSumDB(ctx context.Context, mods ...module.Version) error {
	for _, m := range mods {
		if _, err := u.sumdbDB.Lookup(ctx, m); err != nil {
			return fmt.Errorf("recording %s@%s: %w", m.Path, m.Version, err)
		}
	}
	return nil
}

// NewUpstream starts an Upstream serving mods and stops it when the test
// ends. It fails the test if two modules are the same version or the
// checksum database key cannot be made.
func NewUpstream(t testing.TB, mods []*Module, opts ...UpstreamOption) *Upstream {
	t.Helper()
	u, err := StartUpstream(mods, opts...)
	if err != nil {
		t.Fatalf("testenv: NewUpstream: %v", err)
	}
	t.Cleanup(u.Close)
	return u
}

// StartUpstream is NewUpstream for callers without a testing.TB (testscript
// commands): the caller must Close the Upstream.
func StartUpstream(mods []*Module, opts ...UpstreamOption) (*Upstream, error) {
	cfg := upstreamConfig{sumdbName: DefaultSumDBName}
	for _, opt := range opts {
		opt(&cfg)
	}
	u := &Upstream{
		mods:     make(map[string]map[string]*Module),
		status:   make(map[string]int),
		tamper:   make(map[module.Version]bool),
		tamperMd: make(map[module.Version]bool),
		sums:     make(map[module.Version]string),
	}
	for _, m := range mods {
		if u.module(m.Path, m.Version) != nil {
			return nil, fmt.Errorf("%s given twice", m)
		}
		u.AddModule(m)
	}
	if !cfg.noSumDB {
		skey, vkey, err := note.GenerateKey(rand.Reader, cfg.sumdbName)
		if cfg.skey != "" {
			skey, vkey, err = forkKey(cfg.skey)
		}
		if err != nil {
			return nil, fmt.Errorf("generating checksum database key: %v", err)
		}
		u.sumdb, u.vkey, u.skey = cfg.sumdbName, vkey, skey
		u.sumdbDB = sumdb.NewTestServer(skey, u.goSum)
		u.sumdbSrv = sumdb.NewServer(u.sumdbDB)
	}
	u.srv = httptest.NewServer(http.HandlerFunc(u.serveHTTP))
	return u, nil
}

// Close stops the Upstream's server.
func (u *Upstream) Close() { u.srv.Close() }

// URL returns the base URL, "http://127.0.0.1:port", to use as GOPROXY.
func (u *Upstream) URL() string { return u.srv.URL }

// SumDBName returns the checksum database's name ("sum.test" by default).
func (u *Upstream) SumDBName() string { return u.sumdb }

// VerifierKey returns the checksum database's verifier key, the value for
// GOSUMDB. The go command then finds the database through GOPROXY.
func (u *Upstream) VerifierKey() string { return u.vkey }

// Module returns the module version the Upstream serves, or nil.
func (u *Upstream) Module(path, version string) *Module {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.module(path, version)
}

func (u *Upstream) module(path, version string) *Module {
	return u.mods[path][version]
}

// AddModule serves m from now on, for example to simulate a new release.
// It replaces a module of the same version, which simulates a moved tag;
// but the checksum database keeps the hashes of the first version it was
// asked about, so the go command then reports a checksum mismatch.
func (u *Upstream) AddModule(m *Module) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mods[m.Path] == nil {
		u.mods[m.Path] = make(map[string]*Module)
	}
	u.mods[m.Path][m.Version] = m
}

// AddChecksums makes the checksum database record zipSum and modSum (h1:
// hashes) for path@version, a module the Upstream does not serve: one that
// modgate fetches elsewhere (from Git, for "direct") and must verify.
// Like every record, it is fixed once the database was asked about it.
func (u *Upstream) AddChecksums(path, version, zipSum, modSum string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.sums[module.Version{Path: path, Version: version}] = fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n",
		path, version, zipSum, path, version, modSum)
}

// SetDown makes every request, the checksum database's included, answer
// 503 "upstream down for test" while down is true.
func (u *Upstream) SetDown(down bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.down = down
}

// SetDelay makes every request wait d before it is answered (0 to stop).
// A request whose client gives up earlier is abandoned at once.
func (u *Upstream) SetDelay(d time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.delay = d
}

// SetStatus makes every request whose URL path starts with pathPrefix
// answer code with a one-line text body; code 0 removes the rule. The path
// is the escaped one on the wire, e.g. "/example.com/!upper/@v/" or
// "/example.com/hello/@v/v1.1.0.zip"; a leading slash is added if missing.
// When several prefixes match, the longest wins.
func (u *Upstream) SetStatus(pathPrefix string, code int) {
	if !strings.HasPrefix(pathPrefix, "/") {
		pathPrefix = "/" + pathPrefix
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if code == 0 {
		delete(u.status, pathPrefix)
	} else {
		u.status[pathPrefix] = code
	}
}

// SetTamper makes the Upstream serve Module.TamperedZip instead of the zip
// of path@version while on is true. The checksum database still records
// the genuine hash, so a verifying client must refuse the zip.
func (u *Upstream) SetTamper(path, version string, on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tamper[module.Version{Path: path, Version: version}] = on
}

// SetTamperMod is SetTamper for the .mod file (Module.TamperedMod).
func (u *Upstream) SetTamperMod(path, version string, on bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.tamperMd[module.Version{Path: path, Version: version}] = on
}

// Requests returns the URL paths of all requests received since the start
// or the last ResetLog, in order of arrival, as sent (escaped):
// "/example.com/!upper/@v/list", "/sumdb/sum.test/supported".
func (u *Upstream) Requests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.log)
}

// Count returns how many of Requests are exactly path.
func (u *Upstream) Count(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, p := range u.log {
		if p == path {
			n++
		}
	}
	return n
}

// ResetLog forgets the requests received so far.
func (u *Upstream) ResetLog() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.log = nil
}

// serveHTTP logs the request, applies the injected faults in the order
// delay, down, forced status, then serves the request.
func (u *Upstream) serveHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.log = append(u.log, r.URL.Path)
	delay, down := u.delay, u.down
	code := forcedStatus(u.status, r.URL.Path)
	u.mu.Unlock()

	if delay > 0 {
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-r.Context().Done():
			timer.Stop()
			return
		}
	}
	switch {
	case down:
		textError(w, http.StatusServiceUnavailable, "upstream down for test")
		return
	case code != 0:
		textError(w, code, fmt.Sprintf("%s: status %d forced for test", r.URL.Path, code))
		return
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}

	if rest, ok := strings.CutPrefix(r.URL.Path, "/sumdb/"); ok {
		u.serveSumDB(w, r, rest)
		return
	}
	u.serveModule(w, r)
}

// forcedStatus returns the status of the longest prefix of urlPath in rules, or 0.
func forcedStatus(rules map[string]int, urlPath string) int {
	best, code := -1, 0
	for prefix, c := range rules {
		if strings.HasPrefix(urlPath, prefix) && len(prefix) > best {
			best, code = len(prefix), c
		}
	}
	return code
}

// serveSumDB serves /sumdb/{name}/..., rest being the part after /sumdb/.
func (u *Upstream) serveSumDB(w http.ResponseWriter, r *http.Request, rest string) {
	name, sub, _ := strings.Cut(rest, "/")
	if u.sumdbSrv == nil || name != u.sumdb {
		textError(w, http.StatusNotFound, fmt.Sprintf("checksum database %q not proxied here", name))
		return
	}
	if sub == "supported" {
		w.WriteHeader(http.StatusOK)
		return
	}
	http.StripPrefix("/sumdb/"+name, u.sumdbSrv).ServeHTTP(w, r)
}

// goSum is the checksum database's source of truth: the go.sum lines of the
// genuine (never tampered) files. Unknown versions are an error satisfying
// both errors.Is(err, fs.ErrNotExist) and os.IsNotExist, which sumdb.Server
// uses (without unwrapping) to answer 404 rather than 500.
func (u *Upstream) goSum(path, version string) ([]byte, error) {
	m := u.Module(path, version)
	if m == nil {
		u.mu.Lock()
		lines, ok := u.sums[module.Version{Path: path, Version: version}]
		u.mu.Unlock()
		if ok {
			return []byte(lines), nil
		}
		return nil, &fs.PathError{Op: "lookup", Path: path + "@" + version, Err: fs.ErrNotExist}
	}
	return []byte(m.GoSum()), nil
}

// serveModule serves the module protocol: /{path}/@v/list,
// /{path}/@v/{version}.{info,mod,zip} and /{path}/@latest.
func (u *Upstream) serveModule(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	escPath, file, ok := strings.Cut(p, "/@v/")
	if !ok {
		var latest bool
		escPath, latest = strings.CutSuffix(p, "/@latest")
		if !latest {
			textError(w, http.StatusNotFound, "not a module proxy path: "+r.URL.Path)
			return
		}
		file = "@latest"
	}
	modPath, err := module.UnescapePath(escPath)
	if err != nil {
		textError(w, http.StatusNotFound, fmt.Sprintf("invalid module path %q", escPath))
		return
	}

	u.mu.Lock()
	versions := maps.Clone(u.mods[modPath]) // AddModule may write to the map meanwhile
	u.mu.Unlock()
	if len(versions) == 0 {
		textError(w, http.StatusNotFound, modPath+": unknown module")
		return
	}

	switch file {
	case "list":
		var list []string
		for v := range versions {
			if !module.IsPseudoVersion(v) {
				list = append(list, v)
			}
		}
		semver.Sort(list)
		var b strings.Builder
		for _, v := range list {
			b.WriteString(v + "\n")
		}
		writeBody(w, "text/plain; charset=utf-8", []byte(b.String()))
		return
	case "@latest":
		writeBody(w, "application/json", versions[latestVersion(versions)].Info)
		return
	}

	escVersion, ext, ok := cutExt(file)
	version, err := module.UnescapeVersion(escVersion)
	if !ok || err != nil {
		textError(w, http.StatusNotFound, fmt.Sprintf("%s: invalid file %q", modPath, file))
		return
	}
	m := versions[version]
	if m == nil && ext == ".info" && semver.Build(version) == "" {
		// Like the public proxies, resolve an exact tag of a module without
		// a go.mod as a query: v2.0.0.info answers v2.0.0+incompatible.
		m = versions[version+"+incompatible"]
	}
	if m == nil && ext == ".info" {
		m = resolveCommit(versions, version)
	}
	if m == nil {
		textError(w, http.StatusNotFound, fmt.Sprintf("%s@%s: unknown version", modPath, version))
		return
	}
	mv := module.Version{Path: modPath, Version: version}
	switch ext {
	case ".info":
		writeBody(w, "application/json", m.Info)
	case ".mod":
		writeBody(w, "text/plain; charset=utf-8", u.choose(u.tamperMd, mv, m.Mod, m.TamperedMod()))
	case ".zip":
		writeBody(w, "application/zip", u.choose(u.tamper, mv, m.Zip, m.TamperedZip()))
	}
}

// resolveCommit returns the module version whose .info Origin.Hash starts
// with the commit hash prefix q: the highest tagged version, else the
// highest pseudo-version; nil when q is no hash prefix or none matches.
func resolveCommit(versions map[string]*Module, q string) *Module {
	if len(q) < 7 || strings.Trim(q, "0123456789abcdef") != "" {
		return nil
	}
	var best *Module
	for _, m := range versions {
		var in struct{ Origin *struct{ Hash string } }
		if json.Unmarshal(m.Info, &in) != nil || in.Origin == nil || !strings.HasPrefix(in.Origin.Hash, q) {
			continue
		}
		switch {
		case best == nil,
			module.IsPseudoVersion(best.Version) && !module.IsPseudoVersion(m.Version),
			module.IsPseudoVersion(best.Version) == module.IsPseudoVersion(m.Version) && semver.Compare(m.Version, best.Version) > 0:
			best = m
		}
	}
	return best
}

// choose returns tampered if mv is switched on in set, else genuine.
func (u *Upstream) choose(set map[module.Version]bool, mv module.Version, genuine, tampered []byte) []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	if set[mv] {
		return tampered
	}
	return genuine
}

// cutExt splits "v1.0.0.zip" into "v1.0.0" and ".zip"; ok is false for
// any extension but .info, .mod and .zip.
func cutExt(file string) (version, ext string, ok bool) {
	for _, ext := range []string{".info", ".mod", ".zip"} {
		if v, found := strings.CutSuffix(file, ext); found && v != "" {
			return v, ext, true
		}
	}
	return "", "", false
}

// latestVersion returns the highest release among versions, else the
// highest pre-release, else the highest pseudo-version. versions is not empty.
func latestVersion(versions map[string]*Module) string {
	var release, pre, pseudo string
	for v := range versions {
		switch {
		case module.IsPseudoVersion(v):
			pseudo = maxVersion(pseudo, v)
		case semver.Prerelease(v) != "":
			pre = maxVersion(pre, v)
		default:
			release = maxVersion(release, v)
		}
	}
	switch {
	case release != "":
		return release
	case pre != "":
		return pre
	}
	return pseudo
}

// maxVersion returns the higher of two versions, treating "" as lowest.
func maxVersion(a, b string) string {
	if a == "" || semver.Compare(b, a) > 0 {
		return b
	}
	return a
}

// writeBody answers 200 with body.
func writeBody(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.Write(body)
}

// textError answers code with msg as a one-line text body, which the go
// command prints to the user.
func textError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}
