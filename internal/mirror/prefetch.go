package mirror

import (
	"context"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// Working ahead of the go command.
//
// The go command fetches little at a time: it loads the module graph
// GOMAXPROCS go.mod files at a time, in dependency order, and `go mod
// download` fetches GOMAXPROCS modules at a time, each as .info then .zip.
// Every file it asks for that is not stored costs it the whole fill here:
// the fetch, the checksum database lookup and its tiles, hashing and
// storing. A mirror sees the requests and can start that work before the
// go command asks, so that its requests find the file stored or a fill
// already running (which they join). Two kinds of work run ahead, each in
// a bounded pool of background workers whose fetches use the background
// fill budget (limit.go), so they never take a client's slot:
//
//   - Requirements (PrefetchWorkers, PrefetchDepth). When a client's
//     request fills a go.mod, the go.mod files of its requirements are
//     fetched and verified, and theirs, PrefetchDepth levels deep. The go
//     command needs the go.mod of nearly every version its module graph
//     names, and the graph is the closure of these requirements. A
//     prefetched go.mod that is already stored is read, so that the walk
//     goes on through a partly filled store. Each filled go.mod also
//     queues its version's .info (one small unverified fetch): `go mod
//     download` asks for the .info of every module in the build list once
//     the graph is loaded.
//   - Zips (ZipAheadWorkers). When a client downloads the zips of the
//     versions whose .info files it was given, in the order it asked for
//     them, as `go mod download` does, the zips ahead of it are filled
//     (see InfoServed and ZipRequested below; the server checks that
//     access and policy let the client have each zip: a refused zip is
//     never fetched ahead). The zips fetched that no client asks for are
//     measured in bench/README.md; ZipAheadWorkers 0 turns this off.
//
// Limits, so that working ahead stays a small, predictable cost: each
// version is queued at most once per prefetchMemory; a full queue drops
// work instead of blocking a request; a request with Disable-Module-Fetch
// starts nothing; prefetched files are verified exactly as a client's, and
// a failure only means the client's own request fills the file later.
const (
	prefetchQueue  = 4096
	prefetchMemory = 10 * time.Minute
)

type prefetchJob struct {
	path, version, key string
	// depth is how many levels of requirements a go.mod job still queues
	// after itself.
	depth int
}

// startPrefetch starts the go.mod and zip workers; they stop on Close.
func (m *Mirror) startPrefetch(modWorkers, zipWorkers int) {
	if modWorkers <= 0 && zipWorkers <= 0 {
		return
	}
	m.prefetched = newTTLCache[bool](prefetchQueue*4, m.cfg.Now)
	if modWorkers > 0 {
		m.prefetchQ = make(chan prefetchJob, prefetchQueue)
		for range modWorkers {
			m.bg.Go(func() { m.prefetchLoop(m.prefetchQ) })
		}
		// .info files have workers of their own: one quick fetch each,
		// they must not wait behind go.mod files' lookups.
		m.infoQ = make(chan prefetchJob, prefetchQueue)
		for range max(1, modWorkers/2) {
			m.bg.Go(func() { m.prefetchLoop(m.infoQ) })
		}
	}
	if zipWorkers > 0 {
		m.zipQ = make(chan prefetchJob, prefetchQueue)
		for range zipWorkers {
			m.bg.Go(func() { m.prefetchLoop(m.zipQ) })
		}
	}
}

func (m *Mirror) prefetchLoop(q <-chan prefetchJob) {
	for {
		select {
		case <-m.baseCtx.Done():
			return
		case j := <-q:
			m.prefetch(j)
		}
	}
}

// prefetch fills one queued file.
func (m *Mirror) prefetch(j prefetchJob) {
	ctx, cancel := context.WithTimeout(asBackground(m.baseCtx), backgroundRefreshTimeout)
	defer cancel()
	if j.depth == 0 && m.storedNow(ctx, j.key) {
		// Nothing to fill and nothing to read: leave its serve-path
		// check to the client that asks for it.
		return
	}
	f, err := m.file(ctx, j.path, j.version, j.key, Options{}, j.depth)
	if err != nil {
		m.log.Debug("prefetch failed", "module", j.path, "version", j.version, "file", artifact(j.key), "err", err)
		return
	}
	defer f.Body.Close()
	if f.Result == Hit && j.depth > 0 && strings.HasSuffix(j.key, ".mod") {
		// Stored before: the fill that would have queued its
		// requirements did not run, so read them here.
		if data, err := io.ReadAll(io.LimitReader(f.Body, maxGoModSize)); err == nil {
			m.queueRequirements(data, j.depth-1)
		}
	}
	if o := m.cfg.Observer; o != nil && f.Result == Miss {
		o.Prefetched(artifact(j.key))
	}
}

// queueRequirements queues the go.mod files of the requirements in gomod
// for prefetching; each of them queues its own requirements depth levels
// deep.
func (m *Mirror) queueRequirements(gomod []byte, depth int) {
	if m.prefetchQ == nil {
		return
	}
	f, err := modfile.ParseLax("go.mod", gomod, nil)
	if err != nil {
		return
	}
	for _, r := range f.Require {
		path, version := r.Mod.Path, r.Mod.Version
		if module.Check(path, version) != nil || module.CanonicalVersion(version) != version {
			continue
		}
		key, ok := versionKey(path, version, ".mod")
		if ok && !m.enqueue(m.prefetchQ, prefetchJob{path: path, version: version, key: key, depth: depth}) {
			return // queue full: drop the rest rather than block the request
		}
	}
}

// queueInfo queues the .info of the version whose go.mod, modKey, was just
// filled.
func (m *Mirror) queueInfo(path, version, modKey string) {
	if m.prefetchQ == nil {
		return
	}
	m.enqueue(m.infoQ, prefetchJob{path: path, version: version, key: strings.TrimSuffix(modKey, ".mod") + ".info"})
}

// Zip-ahead follows each client (an address and identity). The .info files
// a client is given are remembered in order; when its zip requests walk
// that list in order, the zips just ahead of it are filled. `go mod
// download` asks for every .info of the build list, then for the zips in
// the same order, two or so at a time: after two zips in a row the next
// aheadStart are queued, and the window doubles with every zip that
// follows the list, up to aheadMax. A build asks for each module's .info
// right before its zip (nothing lies ahead in the list), and `go list -m
// -u all` or `-json all` asks for .info files only, so neither fetches
// anything ahead; a build right after such a list asks for zips in its
// own order, which follows the list only by chance, for a short window.
const (
	sessionWindow  = 2 * time.Minute // how long a remembered .info counts
	sessionInfos   = 4096            // .info files remembered per client
	sessionTotal   = 1 << 16         // .info files remembered for all clients (a few MB)
	sessionClients = 1024            // clients remembered
	aheadStart     = 4               // zips queued when a client starts to follow its list
	aheadMax       = 64              // the most zips queued ahead of a client
	aheadStep      = 4               // a zip at most this far ahead of the last follows the list
)

// A ZipPolicy says whether a client may have a version's zip: the server's
// access and policy rules. A zip it refuses is never fetched ahead.
type ZipPolicy interface {
	AllowZip(path, version string) bool
}

// A Client is who asks: an address and an identity.
type Client struct{ Addr, Identity string }

type zipSession struct {
	infos   []sessionInfo
	pos     map[string]int // zip key → index in infos
	lastZip int            // index of the last zip asked for, -1 if none
	run     int            // zips in a row that followed the list
	queued  int            // infos[:queued] were queued (or passed)
	last    time.Time
}

type sessionInfo struct {
	job prefetchJob
	at  time.Time
}

// InfoServed tells the mirror that client was given the .info file infoKey
// of path@version.
func (m *Mirror) InfoServed(client Client, path, version, infoKey string) {
	if m.zipQ == nil || module.CanonicalVersion(version) != version || !strings.HasSuffix(infoKey, ".info") {
		return
	}
	job := prefetchJob{path: path, version: version, key: strings.TrimSuffix(infoKey, ".info") + ".zip"}
	now := m.cfg.Now()
	m.sessMu.Lock()
	defer m.sessMu.Unlock()
	s := m.session(client, now)
	if n := len(s.infos); n > 0 && (n >= sessionInfos || now.Sub(s.infos[n-1].at) > sessionWindow) {
		// A new list: the old one is full, or the client was quiet.
		m.sessCount -= n
		m.sessInfos.Store(int64(m.sessCount))
		*s = zipSession{pos: make(map[string]int), lastZip: -1, last: now}
	}
	if _, ok := s.pos[job.key]; ok {
		return
	}
	if m.sessCount >= sessionTotal {
		m.pruneSessions(now)
		if m.sessCount >= sessionTotal {
			return // every client is busy: remember nothing more
		}
	}
	s.pos[job.key] = len(s.infos)
	s.infos = append(s.infos, sessionInfo{job, now})
	m.sessCount++
	m.sessInfos.Store(int64(m.sessCount))
}

// pruneSessions forgets the clients quiet for sessionWindow; sessMu is held.
func (m *Mirror) pruneSessions(now time.Time) {
	for c, s := range m.sessions {
		if now.Sub(s.last) > sessionWindow {
			m.sessCount -= len(s.infos)
			m.sessInfos.Store(int64(m.sessCount))
			delete(m.sessions, c)
		}
	}
}

// ZipRequested tells the mirror that client asked for the zip zipKey, and
// queues the zips ahead of it in the client's list when it follows the
// list. allow (nil: everything) says whether the client may have each of
// them.
func (m *Mirror) ZipRequested(client Client, zipKey string, allow ZipPolicy) {
	if m.zipQ == nil || m.sessInfos.Load() == 0 {
		return // no client has a list (a cache-hit load of zips alone)
	}
	now := m.cfg.Now()
	m.sessMu.Lock()
	s := m.session(client, now)
	p, ok := s.pos[zipKey]
	if !ok {
		m.sessMu.Unlock()
		return
	}
	if d := p - s.lastZip; s.lastZip >= 0 && d > 0 && d <= aheadStep {
		s.run++
	} else {
		s.run = 0
	}
	s.lastZip = p
	var jobs []prefetchJob
	if s.run > 0 {
		end := min(len(s.infos), p+1+min(aheadMax, aheadStart<<(s.run-1)))
		for i := max(s.queued, p+1); i < end; i++ {
			if now.Sub(s.infos[i].at) <= sessionWindow {
				jobs = append(jobs, s.infos[i].job)
			}
		}
		s.queued = max(s.queued, end)
	}
	m.sessMu.Unlock()
	for _, j := range jobs {
		m.queueZip(j, allow)
	}
}

// session returns client's session, making room for it; sessMu is held.
func (m *Mirror) session(client Client, now time.Time) *zipSession {
	if m.sessions == nil {
		m.sessions = make(map[Client]*zipSession)
	}
	s := m.sessions[client]
	if s == nil {
		if len(m.sessions) >= sessionClients {
			m.pruneSessions(now)
			if len(m.sessions) >= sessionClients {
				clear(m.sessions) // all busy: forget them rather than grow
				m.sessCount = 0
				m.sessInfos.Store(0)
			}
		}
		s = &zipSession{pos: make(map[string]int), lastZip: -1}
		m.sessions[client] = s
	}
	s.last = now
	return s
}

// queueZip queues job, a zip, for a fill when allow lets the client have it.
func (m *Mirror) queueZip(job prefetchJob, allow ZipPolicy) {
	if allow != nil && !allow.AllowZip(job.path, job.version) {
		return
	}
	m.enqueue(m.zipQ, job)
}

// enqueue queues job on q unless its file was queued within
// prefetchMemory. It reports false only when q is full (the job is
// dropped: prefetching never blocks a request).
func (m *Mirror) enqueue(q chan<- prefetchJob, job prefetchJob) bool {
	if _, ok := m.prefetched.get(job.key, prefetchMemory); ok {
		return true
	}
	m.prefetched.put(job.key, true)
	select {
	case q <- job:
		return true
	default:
		return false
	}
}

// versionKey returns the storage key of path@version's file with the given
// extension.
func versionKey(path, version, ext string) (string, bool) {
	esc, err1 := module.EscapePath(path)
	ev, err2 := module.EscapeVersion(version)
	if err1 != nil || err2 != nil {
		return "", false
	}
	return esc + "/@v/" + ev + ext, true
}
