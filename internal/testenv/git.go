package testenv

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// GitHost is the host name a GitServer answers for, through its proxy.
const GitHost = "corp.example.com"

// A GitServer serves bare Git repositories over HTTPS with Basic
// authentication, the way a company's Git server does: smart HTTP through
// the real "git http-backend" (behind net/http/cgi), and go-import meta
// tags for "?go-get=1". It listens on 127.0.0.1 with a certificate for
// GitHost (and 127.0.0.1) signed by a CA of its own, written to CAFile.
//
// Module paths use the host GitHost, which does not resolve: clients reach
// the server through ProxyURL, a CONNECT proxy on 127.0.0.1 that sends
// GitHost:443 to the server and refuses everything else. Client, GitEnv and
// GoEnv are set up that way.
//
// A repository named "platform/auth" lives in Root/platform/auth.git and
// is cloned as https://corp.example.com/platform/auth.git; its import path
// is corp.example.com/platform/auth. All methods are safe for concurrent
// use.
type GitServer struct {
	User, Password string
	Root           string // GIT_PROJECT_ROOT
	CAFile         string // PEM of the CA that signed the server's certificate
	ProxyURL       string // http://127.0.0.1:port, a CONNECT proxy to the server

	srv   *httptest.Server
	proxy *httptest.Server
	pool  *x509.CertPool

	mu    sync.Mutex
	repos map[string]bool
	meta  map[string]string        // path -> go-import content set by SetMeta
	held  map[string]chan struct{} // repository name -> closed when released
	log   []string                 // "METHOD path?query" of every request
}

// NewGitServer starts a GitServer with credentials user:password and
// stops it when the test ends. An empty user makes a public server that
// asks no one for credentials.
func NewGitServer(t testing.TB, user, password string) *GitServer {
	t.Helper()
	gitBin, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("testenv: no git command: %v", err)
	}
	dir := t.TempDir()
	s := &GitServer{User: user, Password: password, Root: filepath.Join(dir, "repos"), repos: make(map[string]bool), held: make(map[string]chan struct{}), meta: make(map[string]string)}
	if err := os.Mkdir(s.Root, 0o777); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	ca := NewCA(t, "modgate test CA")
	cert, caPEM := ca.TLSCert(t, GitHost, true, GitHost), ca.PEM
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(s.CAFile, caPEM, 0o666); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	s.pool = x509.NewCertPool()
	s.pool.AppendCertsFromPEM(caPEM)

	backend := &cgi.Handler{
		Path: gitBin,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + s.Root, "GIT_HTTP_EXPORT_ALL=1"},
		// "Not a git repository" for missing repositories is expected.
		Stderr: io.Discard,
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.log = append(s.log, r.Method+" "+r.URL.RequestURI())
		var hold chan struct{}
		for name, ch := range s.held {
			if strings.HasPrefix(r.URL.Path, "/"+name+".git/") || strings.HasPrefix(r.URL.Path, "/"+name+"/") || r.URL.Path == "/"+name {
				hold = ch
			}
		}
		s.mu.Unlock()
		if hold != nil {
			select {
			case <-hold:
			case <-r.Context().Done():
				return
			}
		}
		user, password, ok := r.BasicAuth()
		if s.User == "" {
			user = "" // anonymous: a public server
		} else if !ok || user != s.User || password != s.Password {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("go-get") == "1" {
			s.serveGoGet(w, r)
			return
		}
		h := *backend
		h.Env = slices.Clone(backend.Env)
		if user != "" {
			h.Env = append(h.Env, "REMOTE_USER="+user)
		}
		h.ServeHTTP(w, r)
	}))
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)

	target := s.srv.Listener.Addr().String()
	s.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != GitHost+":443" {
			http.Error(w, "this proxy only connects to "+GitHost+":443", http.StatusForbidden)
			return
		}
		upstream, err := net.Dial("tcp", target)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		hj, ok := w.(http.Hijacker)
		if !ok {
			upstream.Close()
			http.Error(w, "no hijacking", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
		conn, rw, err := hj.Hijack()
		if err != nil {
			upstream.Close()
			return
		}
		go func() {
			defer upstream.Close()
			defer conn.Close()
			done := make(chan struct{}, 2)
			go func() { io.Copy(upstream, rw); done <- struct{}{} }()
			go func() { io.Copy(conn, upstream); done <- struct{}{} }()
			<-done
		}()
	}))
	t.Cleanup(s.proxy.Close)
	s.ProxyURL = s.proxy.URL
	return s
}

// Addr is the server's own address (127.0.0.1:port), for tests that want
// to reach it without the proxy (with a certificate check for 127.0.0.1).
func (s *GitServer) Addr() string { return s.srv.Listener.Addr().String() }

// CloneURL is the URL git clones repository name from.
func (s *GitServer) CloneURL(name string) string { return "https://" + GitHost + "/" + name + ".git" }

// Client returns an HTTP client that reaches GitHost through the proxy
// and trusts the server's certificate.
func (s *GitServer) Client() *http.Client {
	proxy, _ := url.Parse(s.ProxyURL)
	return &http.Client{
		Transport: &http.Transport{
			Proxy:           http.ProxyURL(proxy),
			TLSClientConfig: &tls.Config{RootCAs: s.pool},
		},
		Timeout: time.Minute,
	}
}

// GitEnv is the environment git needs to reach the server: its CA and
// the proxy (no credentials).
func (s *GitServer) GitEnv() []string {
	return []string{"GIT_SSL_CAINFO=" + s.CAFile, "HTTPS_PROXY=" + s.ProxyURL, "https_proxy=" + s.ProxyURL, "NO_PROXY=", "no_proxy="}
}

// Hold makes every request for repository name wait (a hung server)
// until the returned function is called or the client gives up. The
// release function is also called when the test ends.
func (s *GitServer) Hold(t testing.TB, name string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.held[name] = ch
	s.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.held, name)
			s.mu.Unlock()
			close(ch)
		})
	}
	t.Cleanup(release)
	return release
}

// Requests returns every request the server received, as
// "METHOD /path?query", in order.
func (s *GitServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// UploadPacks counts the git-upload-pack POSTs for repository name: each
// clone or fetch makes one or more (protocol v2 lists refs in one and
// transfers objects in another); listing refs with GET /info/refs makes
// none.
func (s *GitServer) UploadPacks(name string) int {
	n := 0
	for _, r := range s.Requests() {
		if r == "POST /"+name+".git/git-upload-pack" {
			n++
		}
	}
	return n
}

// serveGoGet answers ?go-get=1 with the go-import tag of the repository
// containing the path, or 404.
func (s *GitServer) serveGoGet(w http.ResponseWriter, r *http.Request) {
	p := strings.Trim(r.URL.Path, "/")
	s.mu.Lock()
	if content, ok := s.meta[p]; ok {
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head>\n<meta name=\"go-import\" content=\"%s\">\n</head><body>go get %s/%s</body></html>\n",
			content, GitHost, p)
		return
	}
	var root string
	for name := range s.repos {
		if (p == name || strings.HasPrefix(p, name+"/")) && len(name) > len(root) {
			root = name
		}
	}
	s.mu.Unlock()
	if root == "" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head>\n<meta name=\"go-import\" content=\"%s/%s git %s\">\n</head><body>go get %s/%s</body></html>\n",
		GitHost, root, s.CloneURL(root), GitHost, p)
}

// SetMeta makes "GET /{p}?go-get=1" answer a go-import meta tag with
// content ("PREFIX VCS REPO-URL"), whatever repositories exist: for tests
// of meta tags naming other version control systems or other URLs.
func (s *GitServer) SetMeta(p, content string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[strings.Trim(p, "/")] = content
}

// A GitRepo is a repository of a GitServer, changed through a work tree
// whose every change is pushed to the served bare repository at once
// (branches and tags mirrored, force-moves and deletions included).
// Commits get fixed, increasing times, one minute apart from 2024-01-01,
// so that pseudo-versions are reproducible.
type GitRepo struct {
	Name string
	work string
	bare string
	t    testing.TB

	mu    sync.Mutex
	ticks int
}

// Repo creates the empty repository name ("platform/auth"), whose default
// branch is "main".
func (s *GitServer) Repo(t testing.TB, name string) *GitRepo {
	t.Helper()
	r := &GitRepo{Name: name, work: t.TempDir(), bare: filepath.Join(s.Root, filepath.FromSlash(name)+".git"), t: t}
	r.git("init", "--bare", "--quiet", "-b", "main", r.bare)
	r.git("-C", r.work, "init", "--quiet", "-b", "main")
	r.git("-C", r.work, "remote", "add", "origin", r.bare)
	s.mu.Lock()
	s.repos[name] = true
	s.mu.Unlock()
	return r
}

// git runs git with a fixed identity and no user configuration.
func (r *GitRepo) git(args ...string) string {
	r.t.Helper()
	r.mu.Lock()
	when := time.Date(2024, 1, 1, 0, r.ticks, 0, 0, time.UTC).Format(time.RFC3339)
	r.mu.Unlock()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com", "GIT_AUTHOR_DATE="+when,
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com", "GIT_COMMITTER_DATE="+when,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("testenv: git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// push mirrors the work tree's branches and tags to the bare repository.
func (r *GitRepo) push() {
	r.t.Helper()
	r.git("-C", r.work, "push", "--quiet", "--force", "--prune", "origin", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
}

// Commit writes files (slash-separated paths relative to the repository
// root) on the current branch, commits them with message and returns the
// commit hash. A file whose content is "" is removed.
func (r *GitRepo) Commit(message string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		file := filepath.Join(r.work, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(file); err != nil {
				r.t.Fatalf("testenv: %v", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(file), 0o777); err != nil {
			r.t.Fatalf("testenv: %v", err)
		}
		if err := os.WriteFile(file, []byte(content), 0o666); err != nil {
			r.t.Fatalf("testenv: %v", err)
		}
	}
	r.mu.Lock()
	r.ticks++
	r.mu.Unlock()
	r.git("-C", r.work, "add", "-A")
	r.git("-C", r.work, "commit", "--quiet", "--allow-empty", "-m", message)
	r.push()
	return r.git("-C", r.work, "rev-parse", "HEAD")
}

// Tag points the lightweight tag name at rev ("HEAD", a branch, a hash),
// moving it if it exists.
func (r *GitRepo) Tag(name, rev string) {
	r.t.Helper()
	r.git("-C", r.work, "tag", "--force", name, rev)
	r.push()
}

// AnnotatedTag creates the annotated tag name on rev.
func (r *GitRepo) AnnotatedTag(name, rev string) {
	r.t.Helper()
	r.git("-C", r.work, "tag", "--force", "-a", "-m", "release "+name, name, rev)
	r.push()
}

// Branch creates (or moves) branch name to rev, without switching to it.
func (r *GitRepo) Branch(name, rev string) {
	r.t.Helper()
	r.git("-C", r.work, "branch", "--force", name, rev)
	r.push()
}

// Checkout switches the work tree to branch (creating it at the current
// commit if it does not exist); later commits go there.
func (r *GitRepo) Checkout(branch string) {
	r.t.Helper()
	if r.git("-C", r.work, "branch", "--list", branch) == "" {
		r.git("-C", r.work, "checkout", "--quiet", "-b", branch)
	} else {
		r.git("-C", r.work, "checkout", "--quiet", branch)
	}
	r.push()
}

// A GoDownload is one result of "go mod download -json".
type GoDownload struct {
	Path, Version, Query string
	Error                string
	Info, GoMod, Zip     string // files in the module cache
	Sum, GoModSum        string // h1: hashes
	Origin               *struct{ VCS, URL, Subdir, Hash, Ref string }
}

// GoDirect runs the real go command with GOPROXY=direct against the
// server (through its proxy, with its credentials in a test HOME: .netrc
// for the go command's own requests, a credential store for git) and
// returns its "go mod download -json" answer for each query
// ("corp.example.com/platform/auth@v1.2.0", "...@main"), keyed by query.
// Queries the go command fails have Error set; the test fails only when
// the go command's output cannot be read.
//
// One go command runs all queries, so it clones each repository once.
func (s *GitServer) GoDirect(t testing.TB, queries ...string) map[string]GoDownload {
	t.Helper()
	env := GoEnv(t, "direct", "off",
		"GOPRIVATE="+GitHost, "GONOSUMDB="+GitHost, "GONOPROXY="+GitHost,
		"SSL_CERT_FILE="+s.CAFile, "GIT_SSL_CAINFO="+s.CAFile,
		"HTTPS_PROXY="+s.ProxyURL, "https_proxy="+s.ProxyURL, "NO_PROXY=", "no_proxy=",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
	)
	var home string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	files := map[string]string{
		".netrc":           fmt.Sprintf("machine %s login %s password %s\n", GitHost, s.User, s.Password),
		".git-credentials": fmt.Sprintf("https://%s:%s@%s\n", url.QueryEscape(s.User), url.QueryEscape(s.Password), GitHost),
		".gitconfig":       "[credential]\n\thelper = store\n",
	}
	if s.User == "" {
		files = nil // a public server: no credentials anywhere
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(home, name), []byte(content), 0o600); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}
	stdout, stderr, err := RunGo(t, t.TempDir(), env, append([]string{"mod", "download", "-json"}, queries...)...)
	out := make(map[string]GoDownload)
	dec := json.NewDecoder(strings.NewReader(stdout))
	for {
		var d GoDownload
		if derr := dec.Decode(&d); derr == io.EOF {
			break
		} else if derr != nil {
			t.Fatalf("testenv: reading go mod download -json output: %v\n%s\n%s", derr, stdout, stderr)
		}
		key := d.Path + "@" + d.Query
		if d.Query == "" {
			key = d.Path + "@" + d.Version
		}
		out[key] = d
	}
	if err != nil && len(out) == 0 {
		t.Fatalf("testenv: %v\n%s", err, stderr)
	}
	for _, q := range queries {
		if _, ok := out[q]; !ok {
			t.Logf("testenv: go mod download printed nothing for %s\n%s", q, firstLines(stderr, 20))
		}
	}
	return out
}

func firstLines(s string, n int) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for i := 0; i < n && sc.Scan(); i++ {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}
