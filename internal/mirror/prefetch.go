package mirror

import (
	"context"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"
)

// Requirement prefetch.
//
// The go command loads the module graph a few go.mod files at a time
// (GOMAXPROCS of them), and each one it needs that is not cached costs a
// chain of round trips here: the file, the checksum database lookup, the
// tiles that prove it. Almost every go.mod it asks for is a requirement of
// one it asked for before. So when a client's request fills a go.mod, the
// go.mod files of its requirements are fetched and verified in the
// background, by a bounded pool of workers, and are usually stored by the
// time the client asks.
//
// Limits, so that prefetching stays a small, predictable cost: only go.mod
// files (never zips: a go.mod request must not pull code), one level deep
// (files fetched by prefetch do not trigger more), each version queued at
// most once per prefetchMemory, and a full queue drops work instead of
// blocking a request.
const (
	prefetchQueue  = 4096
	prefetchMemory = 10 * time.Minute
)

type prefetchJob struct {
	path, version, key string
}

// startPrefetch starts n prefetch workers; they stop on Close.
func (m *Mirror) startPrefetch(n int) {
	if n <= 0 {
		return
	}
	m.prefetchQ = make(chan prefetchJob, prefetchQueue)
	m.prefetched = newTTLCache[bool](prefetchQueue*4, m.cfg.Now)
	for range n {
		m.bg.Go(m.prefetchLoop)
	}
}

func (m *Mirror) prefetchLoop() {
	for {
		select {
		case <-m.baseCtx.Done():
			return
		case j := <-m.prefetchQ:
			ctx, cancel := context.WithTimeout(asBackground(m.baseCtx), backgroundRefreshTimeout)
			f, err := m.file(ctx, j.path, j.version, j.key, Options{}, false)
			cancel()
			if err != nil {
				m.log.Debug("prefetch failed", "module", j.path, "version", j.version, "err", err)
				continue
			}
			f.Body.Close()
			if o := m.cfg.Observer; o != nil && f.Result == Miss {
				o.Prefetched("mod")
			}
		}
	}
}

// queueRequirements queues the go.mod files of the requirements in gomod
// (the go.mod file just filled for a client) for prefetching.
func (m *Mirror) queueRequirements(gomod []byte) {
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
		esc, err1 := module.EscapePath(path)
		ev, err2 := module.EscapeVersion(version)
		if err1 != nil || err2 != nil {
			continue
		}
		key := esc + "/@v/" + ev + ".mod"
		if _, ok := m.prefetched.get(key, prefetchMemory); ok {
			continue
		}
		m.prefetched.put(key, true)
		select {
		case m.prefetchQ <- prefetchJob{path: path, version: version, key: key}:
		default:
			return // queue full: drop the rest rather than block the request
		}
	}
}
