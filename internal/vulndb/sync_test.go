package vulndb

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeDB is an httptest server serving a database in the served layout
// under /vulndb/, from files the test changes between syncs. It records
// the paths requested and can be switched off (503).
type fakeDB struct {
	srv *httptest.Server

	mu       sync.Mutex
	files    map[string][]byte // "index/db.json", "ID/GO-2099-0001.json"
	down     bool
	requests []string
}

func newFakeDB(t *testing.T) *fakeDB {
	f := &fakeDB{files: make(map[string][]byte)}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		name, ok := strings.CutPrefix(r.URL.Path, "/vulndb/")
		if !ok {
			http.NotFound(w, r)
			return
		}
		f.requests = append(f.requests, name)
		if f.down {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		data, ok := f.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(data)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeDB) url() string { return f.srv.URL + "/vulndb" }

// publish replaces the served database with entries (id -> OSV JSON) and a
// matching index, with modified as the database's modification time.
func (f *fakeDB) publish(t *testing.T, modified string, entries map[string][]byte) {
	t.Helper()
	files := map[string][]byte{"index/db.json": []byte(`{"modified":"` + modified + `"}`)}
	byPath := map[string][]moduleVulnRef{}
	for id, data := range entries {
		files["ID/"+id+".json"] = data
		// Build the index with plain JSON decoding, independently of the
		// code under test.
		var e struct {
			Modified time.Time
			Affected []struct{ Package struct{ Name string } }
		}
		if err := json.Unmarshal(data, &e); err != nil {
			t.Fatalf("fixture %s: %v", id, err)
		}
		for _, a := range e.Affected {
			byPath[a.Package.Name] = append(byPath[a.Package.Name], moduleVulnRef{ID: id, Modified: e.Modified})
		}
	}
	var modules []moduleMeta
	for path, refs := range byPath {
		modules = append(modules, moduleMeta{Path: path, Vulns: refs})
	}
	b, err := json.Marshal(modules)
	if err != nil {
		t.Fatal(err)
	}
	files["index/modules.json"] = b
	f.mu.Lock()
	f.files = files
	f.requests = nil
	f.mu.Unlock()
}

// setFile changes one served file without touching the index.
func (f *fakeDB) setFile(name string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[name] = data
}

func (f *fakeDB) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// takeRequests returns the paths requested since the last call, sorted.
func (f *fakeDB) takeRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	slices.Sort(r)
	return r
}

// fixtureEntries returns the fixture entries by id.
func fixtureEntries(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]byte)
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(name), ".json")] = data
	}
	return out
}

func newTestSyncer(t *testing.T, cfg SyncConfig) *Syncer {
	t.Helper()
	s, err := NewSyncer(cfg)
	if err != nil {
		t.Fatalf("NewSyncer: %v", err)
	}
	return s
}

// generations returns the gen-* directories under dir and the current one.
func generations(t *testing.T, dir string) (all []string, current string) {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, genPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := currentGeneration(dir)
	if err != nil {
		t.Fatalf("current generation: %v", err)
	}
	return matches, cur
}

// entryWithFix is GO-2099-0001 with another fixed version and modified time.
func entryWithFix(fixed, modified string) []byte {
	return []byte(`{"schema_version":"1.3.1","id":"GO-2099-0001","modified":"` + modified + `",
		"summary":"Overflow in example.com/lib",
		"affected":[{"package":{"name":"example.com/lib","ecosystem":"Go"},
		"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"` + fixed + `"}]}]}]}`)
}

func TestSyncFromURL(t *testing.T) {
	fake := newFakeDB(t)
	entries := fixtureEntries(t)
	fake.publish(t, "2099-02-01T00:00:00Z", entries)
	dir := t.TempDir()
	s := newTestSyncer(t, SyncConfig{URL: fake.url(), Dir: dir})

	if st := s.Status(); st.Loaded || st.Entries != 0 || !st.LastSuccess.IsZero() {
		t.Errorf("before the first sync: Status = %+v, want nothing loaded", st)
	}
	if got := s.Affecting("example.com/lib", "v1.0.0"); got != nil {
		t.Errorf("before the first sync: Affecting = %v, want nil", ids(got))
	}

	// First sync: the index and every entry.
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	want := []string{"index/db.json", "index/modules.json"}
	for id := range entries {
		want = append(want, "ID/"+id+".json")
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, fake.takeRequests()); diff != "" {
		t.Errorf("first sync requests (-want +got):\n%s", diff)
	}
	st := s.Status()
	if !st.Loaded || st.Entries != 9 || st.LastError != nil || st.LastSuccess.IsZero() ||
		!st.Modified.Equal(time.Date(2099, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("after the first sync: Status = %+v, want 9 entries modified 2099-02-01 and no error", st)
	}
	if got := ids(s.Affecting("example.com/lib", "v1.0.0")); !cmp.Equal(got, []string{"GO-2099-0001@v1.2.4", "GO-2099-0005@"}) {
		t.Errorf("after the first sync: Affecting = %v", got)
	}
	_, first := generations(t, dir)

	// Same index/db.json: nothing else is fetched and the copy stays.
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("unchanged Sync: %v", err)
	}
	if diff := cmp.Diff([]string{"index/db.json"}, fake.takeRequests()); diff != "" {
		t.Errorf("unchanged sync requests (-want +got):\n%s", diff)
	}
	if _, cur := generations(t, dir); cur != first {
		t.Errorf("unchanged sync switched the copy from %s to %s", first, cur)
	}

	// Incremental: one entry changed, one added, one removed.
	entries["GO-2099-0001"] = entryWithFix("1.2.5", "2099-03-01T00:00:00Z")
	entries["GO-2099-0010"] = []byte(`{"id":"GO-2099-0010","modified":"2099-03-01T00:00:00Z","summary":"New",
		"affected":[{"package":{"name":"example.com/new","ecosystem":"Go"}}]}`)
	delete(entries, "GO-2099-0009")
	fake.publish(t, "2099-03-01T00:00:00Z", entries)
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("incremental Sync: %v", err)
	}
	want = []string{"ID/GO-2099-0001.json", "ID/GO-2099-0010.json", "index/db.json", "index/modules.json"}
	if diff := cmp.Diff(want, fake.takeRequests()); diff != "" {
		t.Errorf("incremental sync requests (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		module, version string
		want            []string
	}{
		{"example.com/lib", "v1.2.4", []string{"GO-2099-0001@v1.2.5", "GO-2099-0005@"}},
		{"example.com/new", "v0.1.0", []string{"GO-2099-0010@"}},
		{"example.com/allversions", "v1.0.0", nil},
		{"example.com/multi", "v1.0.0", []string{"GO-2099-0002@v1.0.5"}}, // kept from the old copy
	} {
		if got := ids(s.Affecting(tt.module, tt.version)); !cmp.Equal(got, tt.want) {
			t.Errorf("after the incremental sync: Affecting(%q, %q) = %v, want %v", tt.module, tt.version, got, tt.want)
		}
	}
	// The new copy is complete on disk (unchanged entries were carried
	// over) and the previous one is kept until the next swap.
	all, cur := generations(t, dir)
	if cur == first || len(all) != 2 {
		t.Errorf("after the incremental sync: generations %v, current %s; want the new one and %s", all, cur, first)
	}
	onDisk, err := Open(cur)
	if err != nil {
		t.Fatalf("Open(new copy): %v", err)
	}
	if onDisk.Len() != 9 || onDisk.byID["GO-2099-0002"] == nil || onDisk.byID["GO-2099-0009"] != nil {
		t.Errorf("new copy on disk has %d entries; want 9 with GO-2099-0002 and without GO-2099-0009", onDisk.Len())
	}
}

func TestSyncFailureKeepsCopy(t *testing.T) {
	fake := newFakeDB(t)
	entries := fixtureEntries(t)
	fake.publish(t, "2099-02-01T00:00:00Z", entries)
	dir := t.TempDir()
	s := newTestSyncer(t, SyncConfig{URL: fake.url(), Dir: dir})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	_, good := generations(t, dir)
	wantAffecting := []string{"GO-2099-0001@v1.2.4", "GO-2099-0005@"}

	changed := func(t *testing.T) {
		e := maps(entries)
		e["GO-2099-0001"] = entryWithFix("1.2.5", "2099-03-01T00:00:00Z")
		fake.publish(t, "2099-03-01T00:00:00Z", e)
	}
	tests := []struct {
		name     string
		setup    func(t *testing.T)
		wantErr  error // nil: any error
		wantText string
	}{
		{"server down", func(t *testing.T) { fake.setDown(true) }, nil, "status 503 Service Unavailable"},
		{"entry with another id", func(t *testing.T) {
			changed(t)
			fake.setFile("ID/GO-2099-0001.json", []byte(`{"id":"GO-2099-0002"}`))
		}, ErrCorrupt, `entry GO-2099-0001: invalid vulnerability data: id is "GO-2099-0002"`},
		{"entry with a bad version", func(t *testing.T) {
			changed(t)
			fake.setFile("ID/GO-2099-0001.json", entryWithFix("1.2.x", "2099-03-01T00:00:00Z"))
		}, ErrCorrupt, `fixed version "1.2.x" is not a semantic version`},
		{"truncated entry", func(t *testing.T) {
			changed(t)
			fake.setFile("ID/GO-2099-0001.json", entryWithFix("1.2.5", "2099-03-01T00:00:00Z")[:40])
		}, ErrCorrupt, "GO-2099-0001"},
		{"entry missing", func(t *testing.T) {
			changed(t)
			fake.setFile("index/modules.json", []byte(`[{"path":"example.com/x","vulns":[{"id":"GO-2099-0404","modified":"2099-03-01T00:00:00Z"}]}]`))
		}, nil, "ID/GO-2099-0404.json"},
		{"index lists nothing", func(t *testing.T) {
			changed(t)
			fake.setFile("index/modules.json", []byte(`[]`))
		}, ErrCorrupt, "lists no entries"},
		{"index with a path as id", func(t *testing.T) {
			changed(t)
			fake.setFile("index/modules.json", []byte(`[{"path":"example.com/x","vulns":[{"id":"../index/db"}]}]`))
		}, ErrCorrupt, `entry id "../index/db"`},
		{"bad db.json", func(t *testing.T) { fake.setFile("index/db.json", []byte(`{"modified":1}`)) }, ErrCorrupt, "index/db.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Cleanup(func() {
				fake.setDown(false)
				fake.publish(t, "2099-02-01T00:00:00Z", entries)
			})
			tt.setup(t)
			err := s.Sync(t.Context())
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Sync = %v, want an error matching %v containing %q", err, tt.wantErr, tt.wantText)
			}
			if !strings.Contains(err.Error(), fake.url()) {
				t.Errorf("Sync error %q does not name the source %s", err, fake.url())
			}
			if got := ids(s.Affecting("example.com/lib", "v1.0.0")); !cmp.Equal(got, wantAffecting) {
				t.Errorf("after a failed sync: Affecting = %v, want the old answer %v", got, wantAffecting)
			}
			st := s.Status()
			if !st.Loaded || st.Entries != 9 || st.LastError == nil || st.LastError.Error() != err.Error() {
				t.Errorf("after a failed sync: Status = %+v, want the old copy and the error", st)
			}
			all, cur := generations(t, dir)
			if cur != good || len(all) != 1 {
				t.Errorf("after a failed sync: generations %v, current %s; want only %s", all, cur, good)
			}
		})
	}
}

func maps(m map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestRestartOffline(t *testing.T) {
	fake := newFakeDB(t)
	fake.publish(t, "2099-02-01T00:00:00Z", fixtureEntries(t))
	dir := t.TempDir()
	s := newTestSyncer(t, SyncConfig{URL: fake.url(), Dir: dir})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	fake.srv.Close()

	// A new process with the same directory answers from disk at once.
	s2 := newTestSyncer(t, SyncConfig{URL: fake.url(), Dir: dir})
	if got := ids(s2.Affecting("example.com/lib", "v1.0.0")); !cmp.Equal(got, []string{"GO-2099-0001@v1.2.4", "GO-2099-0005@"}) {
		t.Errorf("after restart: Affecting = %v", got)
	}
	if st := s2.Status(); !st.Loaded || st.Entries != 9 || !st.Modified.Equal(time.Date(2099, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("after restart: Status = %+v, want the copy on disk", st)
	}
	if err := s2.Sync(t.Context()); err == nil {
		t.Error("Sync with the server gone succeeded, want an error")
	}
	if got := s2.Affecting("example.com/lib", "v1.0.0"); len(got) != 2 {
		t.Errorf("after a failed sync: Affecting = %v, want the copy on disk", ids(got))
	}
}

func TestBrokenCopyOnDisk(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, genPrefix+"1")
	writeFile(t, filepath.Join(gen, "index/db.json"), `{"modified":"2099-01-01T00:00:00Z"}`)
	writeFile(t, filepath.Join(gen, "ID/GO-2099-0001.json"), `{"id":"GO-2099-0001","affected":[{"package":{"name":"x","ecosystem":"Go"},"ranges":[{"type":"SEMVER","events":[{"fixed":"bad"}]}]}]}`)
	if err := os.Symlink(genPrefix+"1", filepath.Join(dir, currentLink)); err != nil {
		t.Fatal(err)
	}
	s := newTestSyncer(t, SyncConfig{Source: fixtureDir, Dir: dir})
	if st := s.Status(); st.Loaded || !errors.Is(st.LastError, ErrCorrupt) {
		t.Errorf("broken copy on disk: Status = %+v, want nothing loaded and an ErrCorrupt error", st)
	}
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if st := s.Status(); !st.Loaded || st.LastError != nil || st.Entries != 9 {
		t.Errorf("after Sync: Status = %+v, want the fixture copy", st)
	}
}

func TestSyncFromSourceDir(t *testing.T) {
	src := t.TempDir()
	for id := range fixtureEntries(t) {
		copyFixture(t, id, src)
	}
	dir := t.TempDir()
	s := newTestSyncer(t, SyncConfig{Source: src, Dir: dir})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("first Sync: %v", err)
	}
	_, first := generations(t, dir)

	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("unchanged Sync: %v", err)
	}
	if _, cur := generations(t, dir); cur != first {
		t.Errorf("unchanged source: copy switched from %s to %s", first, cur)
	}

	writeFile(t, filepath.Join(src, "GO-2099-0001.json"), string(entryWithFix("1.2.6", "2099-01-01T00:00:00Z")))
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("changed Sync: %v", err)
	}
	_, cur := generations(t, dir)
	if cur == first {
		t.Fatal("changed source: copy not switched")
	}
	if got := ids(s.Affecting("example.com/lib", "v1.2.5")); !cmp.Equal(got, []string{"GO-2099-0001@v1.2.6", "GO-2099-0005@"}) {
		t.Errorf("changed source: Affecting = %v", got)
	}
	// Unchanged entries are carried over as links to the same file.
	a, errA := os.Stat(filepath.Join(first, "ID", "GO-2099-0002.json"))
	b, errB := os.Stat(filepath.Join(cur, "ID", "GO-2099-0002.json"))
	if errA != nil || errB != nil || !os.SameFile(a, b) {
		t.Errorf("unchanged entry GO-2099-0002 not linked between copies (%v, %v)", errA, errB)
	}

	// A broken source changes nothing.
	writeFile(t, filepath.Join(src, "GO-2099-0002.json"), `{`)
	if err := s.Sync(t.Context()); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "GO-2099-0002.json") {
		t.Errorf("broken source: Sync = %v, want ErrCorrupt naming GO-2099-0002.json", err)
	}
	if _, after := generations(t, dir); after != cur {
		t.Errorf("broken source: copy switched from %s to %s", cur, after)
	}
}

func TestSyncFromFileURL(t *testing.T) {
	// modgate's own copy is a valid served layout: sync one Syncer from
	// another's directory through a file:// URL.
	first := newTestSyncer(t, SyncConfig{Source: fixtureDir, Dir: t.TempDir()})
	if err := first.Sync(t.Context()); err != nil {
		t.Fatalf("Sync from the fixture directory: %v", err)
	}
	_, cur := generations(t, first.dirForTest())
	s := newTestSyncer(t, SyncConfig{URL: "file://" + filepath.ToSlash(cur), Dir: t.TempDir()})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync from file URL: %v", err)
	}
	if got := ids(s.Affecting("example.com/incompat", "v2.0.0+incompatible")); !cmp.Equal(got, []string{"GO-2099-0008@v2.3.1+incompatible"}) {
		t.Errorf("Affecting = %v", got)
	}
	if got, want := s.Status().Modified, first.Status().Modified; !got.Equal(want) {
		t.Errorf("Modified = %v, want the source's %v", got, want)
	}
}

func (s *Syncer) dirForTest() string { return s.dir }

func TestNewSyncerErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  SyncConfig
		want string
	}{
		{"no source", SyncConfig{Dir: dir}, "neither a URL nor a source directory"},
		{"both sources", SyncConfig{URL: "https://vulndb.corp.example", Source: dir, Dir: dir}, "both a URL and a source directory"},
		{"no dir", SyncConfig{URL: "https://vulndb.corp.example"}, "no directory"},
		{"bad scheme", SyncConfig{URL: "ftp://vulndb.corp.example", Dir: dir}, `scheme "ftp" not supported`},
		{"file URL with host", SyncConfig{URL: "file://host.corp.example/x", Dir: dir}, "must name a local path"},
		{"negative interval", SyncConfig{URL: "https://vulndb.corp.example", Dir: dir, Interval: -time.Second}, "negative"},
		{"password redacted", SyncConfig{URL: "gopher://user:secret@vulndb.corp.example", Dir: dir}, "user:xxxxx@"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSyncer(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secret") {
				t.Errorf("NewSyncer(%+v) = %v, want an error containing %q", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestRun(t *testing.T) {
	fake := newFakeDB(t)
	fake.publish(t, "2099-02-01T00:00:00Z", fixtureEntries(t))
	s := newTestSyncer(t, SyncConfig{URL: fake.url(), Dir: t.TempDir(), Interval: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	// Run syncs at once; poll for the result.
	deadline := time.Now().Add(10 * time.Second)
	for s.Status().LastSuccess.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not sync within 10s: Status = %+v", s.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := s.Affecting("example.com/lib", "v1.2.3"); len(got) != 2 {
		t.Errorf("after Run's first sync: Affecting = %v", ids(got))
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

// TestSyncFromFileURLFlat: policy.vulndb.url file:///dir reads a flat
// directory of OSV entries, as a Source of the same directory does, and
// picks up changes to it.
func TestSyncFromFileURLFlat(t *testing.T) {
	src := t.TempDir()
	for id := range fixtureEntries(t) {
		copyFixture(t, id, src)
	}
	s := newTestSyncer(t, SyncConfig{URL: "file://" + filepath.ToSlash(src), Dir: t.TempDir()})
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync from a file URL of a flat directory: %v", err)
	}
	if got := ids(s.Affecting("example.com/incompat", "v2.0.0+incompatible")); !cmp.Equal(got, []string{"GO-2099-0008@v2.3.1+incompatible"}) {
		t.Errorf("Affecting = %v", got)
	}
	writeFile(t, filepath.Join(src, "GO-2099-0001.json"), string(entryWithFix("1.2.6", "2099-01-01T00:00:00Z")))
	if err := s.Sync(t.Context()); err != nil {
		t.Fatalf("Sync after a change: %v", err)
	}
	if got := ids(s.Affecting("example.com/lib", "v1.2.5")); !cmp.Equal(got, []string{"GO-2099-0001@v1.2.6", "GO-2099-0005@"}) {
		t.Errorf("after a change: Affecting = %v", got)
	}
	// An empty directory is still an error, not an empty database.
	empty := newTestSyncer(t, SyncConfig{URL: "file://" + filepath.ToSlash(t.TempDir()), Dir: t.TempDir()})
	if err := empty.Sync(t.Context()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sync from an empty directory = %v, want fs.ErrNotExist", err)
	}
}
