package git

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/modgate/modgate/internal/upstream"
)

// A repo is one Git repository: its ref list (cached for RefsTTL) and its
// bare mirror under Config.Dir.
//
// Reading the mirror (log, cat-file, archive, merge-base) needs no lock:
// git adds objects and moves refs atomically. Creating the mirror and
// fetching into it hold fetchLock, a one-slot channel so that waiting for
// it respects the caller's context; a slow fetch of one repository
// therefore delays requests for that repository only.
type repo struct {
	src  *Source
	url  string // clone URL, without credentials
	key  string // repoKey(url), for Forget
	dir  string // the bare mirror
	env  []string
	auth *Credentials // sent with the ref listing; nil when url's host must not see them

	fetchLock chan struct{}
	refsGroup singleflight.Group

	mu         sync.Mutex
	refs       refMap
	refsAt     time.Time
	fetchedSum string          // refMap.sum of the refs the mirror was last fetched at
	modules    map[string]bool // module paths served from this repository
	saveMu     sync.Mutex      // serializes saveModules
	files      map[string]fileResult
	times      map[string]time.Time // commit hash -> committer time
}

// fileResult is a cached file read at a commit.
type fileResult struct {
	data []byte
	ok   bool
}

// maxCachedFiles bounds repo.files; the cache is dropped when it is full.
const maxCachedFiles = 2000

// fetchedFile is the name, inside the bare mirror, of the file that
// records the refs summary of the last successful fetch, so that a
// restarted server knows its mirror is current.
const fetchedFile = "modgate-fetched"

func newRepo(s *Source, cloneURL string) *repo {
	sum := sha256.Sum256([]byte(cloneURL))
	r := &repo{
		src:       s,
		url:       cloneURL,
		key:       repoKey(cloneURL),
		dir:       filepath.Join(s.cfg.Dir, mirrorName(cloneURL)+"-"+hex.EncodeToString(sum[:6])+".git"),
		fetchLock: make(chan struct{}, 1),
		modules:   make(map[string]bool),
		files:     make(map[string]fileResult),
		times:     make(map[string]time.Time),
	}
	prefix := ""
	if s.credentialsFor(cloneURL) {
		c := s.cfg.Credentials
		r.auth = &c
		if u, err := url.Parse(cloneURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
			prefix = u.Scheme + "://" + u.Host + "/"
		}
	}
	r.env = authEnv(prefix, s.cfg.Credentials)
	if data, err := os.ReadFile(filepath.Join(r.dir, fetchedFile)); err == nil {
		r.fetchedSum = strings.TrimSpace(string(data))
	}
	r.loadModules()
	return r
}

// mirrorName turns a clone URL into a readable directory name.
func mirrorName(cloneURL string) string {
	key := repoKey(cloneURL)
	var b strings.Builder
	for _, c := range key {
		if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	return truncate(b.String(), 80)
}

// shown is the repository URL as errors and logs show it.
func (r *repo) shown() string { return redactURL(r.url) }

// git runs a git command on the mirror.
func (r *repo) git(ctx context.Context, args ...string) ([]byte, error) {
	return r.src.run.run(ctx, cmd{dir: r.dir, env: r.env, args: args})
}

// loadRefs returns the repository's refs, from the cache when younger than
// RefsTTL and not older than upstream.FreshSince(ctx) (a refresh of a list
// or @latest wants the refs as they are now). Concurrent callers share one
// listing, which runs detached from any one caller (bounded by the refs
// timeout) so that a caller giving up does not fail the others.
func (r *repo) loadRefs(ctx context.Context) (refMap, error) {
	since := upstream.FreshSince(ctx)
	r.mu.Lock()
	if r.refs != nil && time.Since(r.refsAt) < r.src.cfg.RefsTTL && !r.refsAt.Before(since) {
		refs := r.refs
		r.mu.Unlock()
		return refs, nil
	}
	r.mu.Unlock()
	ch := r.refsGroup.DoChan("refs", func() (any, error) {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.src.refsTimeout())
		defer cancel()
		start := time.Now()
		refs, err := r.listRefs(lctx)
		if err != nil {
			return nil, err
		}
		r.src.log.Debug("listed refs", "repo", r.shown(), "refs", len(refs), "duration", time.Since(start))
		r.mu.Lock()
		// Dated when the listing started: the refs are at least that new.
		r.refs, r.refsAt = refs, start
		r.mu.Unlock()
		return refs, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(refMap), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// listRefs asks the server for the refs: the smart-HTTP advertisement for
// http(s) URLs (clean status codes), "git ls-remote" for anything else.
func (r *repo) listRefs(ctx context.Context) (refMap, error) {
	if u, err := url.Parse(r.url); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
		return listRefsHTTP(ctx, r.src.client, r.url, r.auth)
	}
	out, err := r.src.run.run(ctx, cmd{env: r.env, args: []string{"ls-remote", "-q", "--end-of-options", r.url}})
	if err != nil {
		return nil, remoteError(err)
	}
	return parseLsRemote(out), nil
}

// forget drops the cached refs, so that the next request lists them again.
func (r *repo) forget() {
	r.mu.Lock()
	r.refs = nil
	r.mu.Unlock()
}

// served records that modulePath was answered from this repository. A
// module new to the repository is also written to its modules file, so
// that a restarted server still knows which modules a webhook for the
// repository refreshes.
func (r *repo) served(modulePath string) {
	r.mu.Lock()
	known := r.modules[modulePath]
	r.modules[modulePath] = true
	r.mu.Unlock()
	if known {
		return
	}
	if err := r.saveModules(); err != nil {
		r.src.log.Warn("recording the modules of a repository failed; a webhook after a restart will miss them until they are asked for again",
			"repo", r.shown(), "err", err)
	}
}

// modulesFile is the file beside the mirror that lists the modules served
// from it: a first line "url CLONE-URL", then one module path per line.
// It sits beside the mirror, not in it, because the mirror directory is
// created by renaming a finished clone into place.
func (r *repo) modulesFile() string { return strings.TrimSuffix(r.dir, ".git") + modulesSuffix }

const modulesSuffix = ".modules"

// saveModules rewrites the modules file (atomically) with every module
// served so far.
func (r *repo) saveModules() error {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	var b strings.Builder
	b.WriteString("url " + r.url + "\n")
	for _, m := range slices.Sorted(slices.Values(r.servedModules())) {
		b.WriteString(m + "\n")
	}
	// The source's temporary directory is on the same file system and
	// emptied at start, so a crash leaves nothing behind.
	if err := os.MkdirAll(r.src.tmp, 0o777); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(r.src.tmp, "modules-*")
	if err != nil {
		return err
	}
	_, err = tmp.WriteString(b.String())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), r.modulesFile())
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// loadModules reads the modules file written by an earlier process.
func (r *repo) loadModules() {
	data, err := os.ReadFile(r.modulesFile())
	if err != nil {
		return
	}
	header, rest, _ := strings.Cut(string(data), "\n")
	if header != "url "+r.url {
		return // another URL's file (a hash collision): not ours
	}
	for _, m := range strings.Fields(rest) {
		r.modules[m] = true
	}
}

// readModulesURL returns the clone URL recorded in a modules file.
func readModulesURL(file string) (string, bool) {
	f, err := os.Open(file)
	if err != nil {
		return "", false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", false
	}
	u, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "url ")
	return u, ok && u != ""
}

// servedModules returns the module paths answered from this repository.
func (r *repo) servedModules() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for m := range r.modules {
		out = append(out, m)
	}
	return out
}

// lock takes fetchLock, or gives up when ctx ends.
func (r *repo) lock(ctx context.Context) (unlock func(), err error) {
	select {
	case r.fetchLock <- struct{}{}:
		return func() { <-r.fetchLock }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// resolveLocal returns the full hash of the commit rev names in the mirror
// (a full or abbreviated hash, or a local ref); ok is false when the
// mirror does not have it (or does not exist yet).
func (r *repo) resolveLocal(ctx context.Context, rev string) (hash string, ok bool, err error) {
	if _, err := os.Stat(filepath.Join(r.dir, "HEAD")); err != nil {
		return "", false, nil
	}
	out, err := r.git(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", rev+"^{commit}")
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) && ge.ExitCode == 1 {
			return "", false, nil // unknown or ambiguous
		}
		return "", false, err
	}
	return strings.TrimSpace(string(out)), true, nil
}

// ensure makes sure the mirror has the commit rev names and returns its
// full hash, fetching when it does not and the refs changed since the last
// fetch. refs is the current ref list. A rev the mirror still lacks
// afterwards matches fs.ErrNotExist.
func (r *repo) ensure(ctx context.Context, refs refMap, rev string) (string, error) {
	if hash, ok, err := r.resolveLocal(ctx, rev); err != nil || ok {
		return hash, err
	}
	if err := r.sync(ctx, refs); err != nil {
		return "", err
	}
	hash, ok, err := r.resolveLocal(ctx, rev)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", notExist("unknown revision %s", rev)
	}
	return hash, nil
}

// sync fetches every branch and tag into the mirror unless it was already
// fetched at this state of the refs. The fetch is incremental: only
// objects the mirror lacks cross the network. Local refs are pruned and
// forced to the server's, so that the tags git sees locally (for
// pseudo-version bases) are exactly the server's.
func (r *repo) sync(ctx context.Context, refs refMap) error {
	want := refs.sum()
	r.mu.Lock()
	done := r.fetchedSum == want
	r.mu.Unlock()
	if done {
		return nil
	}
	unlock, err := r.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	r.mu.Lock()
	done = r.fetchedSum == want
	r.mu.Unlock()
	if done {
		return nil
	}
	if err := r.create(ctx); err != nil {
		return err
	}
	if len(refs) == 0 {
		return nil // an empty repository: nothing to fetch
	}
	start := time.Now()
	_, err = r.git(ctx, "-c", "protocol.version=2", "fetch", "--quiet", "--force", "--prune", "--no-tags",
		"--end-of-options", r.url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	if err != nil {
		return remoteError(err)
	}
	r.src.fetches.Add(1)
	r.src.log.Debug("fetched repository", "repo", r.shown(), "duration", time.Since(start))
	if err := os.WriteFile(filepath.Join(r.dir, fetchedFile), []byte(want+"\n"), 0o666); err != nil {
		return fmt.Errorf("recording fetch: %w", err)
	}
	r.mu.Lock()
	r.fetchedSum = want
	r.mu.Unlock()
	return nil
}

// create makes the bare mirror if it does not exist yet, in a temporary
// directory renamed into place, so that a crash never leaves half a
// mirror. The caller holds fetchLock.
func (r *repo) create(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(r.dir, "HEAD")); err == nil {
		return ensureAttributes(r.dir)
	}
	if err := os.MkdirAll(filepath.Dir(r.dir), 0o777); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(r.dir), ".init-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if _, err := r.src.run.run(ctx, cmd{env: r.env, args: []string{"init", "--bare", "--quiet", tmp}}); err != nil {
		return err
	}
	if err := ensureAttributes(tmp); err != nil {
		return err
	}
	os.RemoveAll(r.dir) // a directory without HEAD is a leftover
	return os.Rename(tmp, r.dir)
}

// ensureAttributes switches export-subst and export-ignore off for git
// archive, as the go command does: zips then hash the same whatever the
// repository's .gitattributes say.
func ensureAttributes(dir string) error {
	const attr = "\n* -export-subst -export-ignore\n"
	p := filepath.Join(dir, "info", "attributes")
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return err
	}
	data, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if bytes.HasSuffix(data, []byte(attr)) {
		return nil
	}
	return os.WriteFile(p, append(data, attr...), 0o666)
}

// commitTime returns the committer time of hash, in UTC.
func (r *repo) commitTime(ctx context.Context, hash string) (time.Time, error) {
	r.mu.Lock()
	t, ok := r.times[hash]
	r.mu.Unlock()
	if ok {
		return t, nil
	}
	out, err := r.git(ctx, "-c", "log.showsignature=false", "log", "--no-decorate", "-n1", "--format=format:%ct",
		"--end-of-options", hash, "--")
	if err != nil {
		return time.Time{}, err
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, unavailable("git log %s: unexpected output %q", hash, truncate(string(out), 80))
	}
	t = time.Unix(sec, 0).UTC()
	r.mu.Lock()
	if len(r.times) >= maxCachedFiles {
		clear(r.times)
	}
	r.times[hash] = t
	r.mu.Unlock()
	return t, nil
}

// readFile returns the content of file at commit hash; ok is false when
// there is no such file (or it is not a regular file). Results are cached:
// a commit's files never change.
func (r *repo) readFile(ctx context.Context, hash, file string) (data []byte, ok bool, err error) {
	key := hash + ":" + file
	r.mu.Lock()
	res, hit := r.files[key]
	r.mu.Unlock()
	if hit {
		return res.data, res.ok, nil
	}
	out, err := r.src.run.run(ctx, cmd{dir: r.dir, env: r.env, stdin: strings.NewReader(key + "\n"),
		args: []string{"cat-file", "--batch"}})
	if err != nil {
		return nil, false, err
	}
	res, err = parseBatch(out)
	if err != nil {
		return nil, false, unavailable("git cat-file %s: %v", key, err)
	}
	r.mu.Lock()
	if len(r.files) >= maxCachedFiles {
		clear(r.files)
	}
	r.files[key] = res
	r.mu.Unlock()
	return res.data, res.ok, nil
}

// parseBatch reads one answer of "git cat-file --batch": "OID TYPE SIZE\n"
// and the content, or "NAME missing".
func parseBatch(out []byte) (fileResult, error) {
	br := bufio.NewReader(bytes.NewReader(out))
	hdr, err := br.ReadString('\n')
	if err != nil {
		return fileResult{}, fmt.Errorf("short answer %q", truncate(string(out), 80))
	}
	f := strings.Fields(hdr)
	if len(f) == 3 && f[1] != "blob" {
		return fileResult{}, nil // a tree or a submodule: not a file
	}
	if len(f) != 3 {
		return fileResult{}, nil // "missing" or "ambiguous"
	}
	size, err := strconv.Atoi(f[2])
	if err != nil || size < 0 {
		return fileResult{}, fmt.Errorf("malformed header %q", hdr)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(br, data); err != nil {
		return fileResult{}, fmt.Errorf("short content: %v", err)
	}
	return fileResult{data: data, ok: true}, nil
}

// mergedTags returns the tags of the mirror reachable from hash. The caller
// has synced the mirror, so they are the server's tags.
func (r *repo) mergedTags(ctx context.Context, hash string) ([]string, error) {
	out, err := r.git(ctx, "for-each-ref", "--format=%(refname)", "--merged="+hash, "refs/tags/")
	if err != nil {
		return nil, err
	}
	var tags []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if tag, ok := strings.CutPrefix(strings.TrimSpace(line), "refs/tags/"); ok {
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// isAncestor reports whether commit a is an ancestor of commit b.
func (r *repo) isAncestor(ctx context.Context, a, b string) (bool, error) {
	_, err := r.git(ctx, "merge-base", "--is-ancestor", "--end-of-options", a, b)
	var ge *GitError
	if errors.As(err, &ge) && ge.ExitCode == 1 {
		return false, nil
	}
	return err == nil, err
}

// archive writes "git archive --format=zip" of hash (limited to subdir
// when not empty) to w, with the go command's settings.
func (r *repo) archive(ctx context.Context, hash, subdir string, w io.Writer) error {
	args := []string{"-c", "core.autocrlf=input", "-c", "core.eol=lf", "archive", "--format=zip", "--prefix=prefix/",
		"--end-of-options", hash}
	if subdir != "" {
		args = append(args, subdir)
	}
	_, err := r.src.run.run(ctx, cmd{dir: r.dir, env: r.env, stdout: w, args: args})
	return err
}
