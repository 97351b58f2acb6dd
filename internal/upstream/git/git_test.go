package git_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb/dirhash"

	"github.com/modgate/modgate/internal/testenv"
	"github.com/modgate/modgate/internal/upstream"
	"github.com/modgate/modgate/internal/upstream/git"
)

const (
	user     = "ci-bot"
	password = "s3cret-token"
	host     = testenv.GitHost
)

// world is the Git server and repositories every test shares: building
// them and asking the go command about them is the slow part.
type world struct {
	srv *testenv.GitServer
	// hashes of commits the queries name
	featureHead, mainHead, notagsHead string
}

// buildWorld builds the shared repositories:
//
//	platform/auth      root module: v1.0.0 (retracted by v1.2.0), v1.1.0 (annotated), v1.2.0,
//	                   v1.3.0-rc.1; .gitattributes export-ignore; LICENSE; untagged HEAD on main;
//	                   branch feature off v1.1.0; sub/ module (tag sub/v0.1.0, no LICENSE of its own);
//	                   v2/ module (major subdirectory, tag v2.0.0)
//	platform/legacy    no go.mod: v1.0.0, v2.0.0 (+incompatible)
//	platform/major     major branch layout: v1.0.0, then go.mod /v2: v2.0.0, v2.1.0
//	platform/notags    go.mod, commits, no tags
//	platform/pre       only v0.1.0-beta.1
func buildWorld(t testing.TB) *world {
	w := &world{srv: testenv.NewGitServer(t, user, password)}
	auth := w.srv.Repo(t, "platform/auth")
	auth.Commit("v1.0.0", map[string]string{
		"go.mod":         "module corp.example.com/platform/auth\n\ngo 1.21\n",
		"auth.go":        "package auth\n\nfunc Version() string { return \"1.0.0\" }\n",
		"LICENSE":        "Copyright Corp.\n",
		".gitattributes": "ignored.txt export-ignore\nsubst.txt export-subst\n",
		"ignored.txt":    "a file git archive would leave out\n",
		"subst.txt":      "$Format:%H$\n",
	})
	auth.Tag("v1.0.0", "HEAD")
	v110 := auth.Commit("v1.1.0", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"1.1.0\" }\n"})
	auth.AnnotatedTag("v1.1.0", "HEAD")
	auth.Commit("v1.2.0", map[string]string{
		"go.mod":  "module corp.example.com/platform/auth\n\ngo 1.21\n\nretract v1.0.0 // broken\n",
		"auth.go": "package auth\n\nfunc Version() string { return \"1.2.0\" }\n",
	})
	auth.Tag("v1.2.0", "HEAD")
	auth.Commit("rc and sub module", map[string]string{
		"sub/go.mod":                "module corp.example.com/platform/auth/sub\n\ngo 1.21\n",
		"sub/sub.go":                "package sub\n",
		"v2/go.mod":                 "module corp.example.com/platform/auth/v2\n\ngo 1.21\n",
		"v2/auth.go":                "package auth\n\nfunc Version() string { return \"2.0.0\" }\n",
		"auth.go":                   "package auth\n\nfunc Version() string { return \"1.3.0-rc.1\" }\n",
		"docs/a.md":                 "docs\n",
		"sub/README":                "sub module\n",
		"vendor/example.com/x/x.go": "package x\n",
	})
	auth.Tag("v1.3.0-rc.1", "HEAD")
	auth.Tag("sub/v0.1.0", "HEAD")
	auth.Tag("v2.0.0", "HEAD")
	w.mainHead = auth.Commit("untagged work", map[string]string{"auth.go": "package auth\n\nfunc Version() string { return \"main\" }\n"})
	auth.Branch("feature", v110)
	auth.Checkout("feature")
	w.featureHead = auth.Commit("feature work", map[string]string{"feature.go": "package auth\n"})
	auth.Checkout("main")

	legacy := w.srv.Repo(t, "platform/legacy")
	legacy.Commit("one", map[string]string{"legacy.go": "package legacy\n"})
	legacy.Tag("v1.0.0", "HEAD")
	legacy.Commit("two", map[string]string{"legacy.go": "package legacy // two\n"})
	legacy.Tag("v2.0.0", "HEAD")

	major := w.srv.Repo(t, "platform/major")
	major.Commit("v1", map[string]string{"go.mod": "module corp.example.com/platform/major\n", "m.go": "package major\n"})
	major.Tag("v1.0.0", "HEAD")
	major.Commit("v2", map[string]string{"go.mod": "module corp.example.com/platform/major/v2\n", "m.go": "package major // v2\n"})
	major.Tag("v2.0.0", "HEAD")
	major.Commit("v2.1", map[string]string{"m.go": "package major // v2.1\n"})
	major.Tag("v2.1.0", "HEAD")

	notags := w.srv.Repo(t, "platform/notags")
	notags.Commit("one", map[string]string{"go.mod": "module corp.example.com/platform/notags\n", "n.go": "package notags\n"})
	w.notagsHead = notags.Commit("two", map[string]string{"n.go": "package notags // two\n"})

	pre := w.srv.Repo(t, "platform/pre")
	pre.Commit("one", map[string]string{"go.mod": "module corp.example.com/platform/pre\n", "p.go": "package pre\n"})
	pre.Tag("v0.1.0-beta.1", "HEAD")
	return w
}

// newSource returns a Source for the shared server in template mode.
func newSource(t *testing.T, srv *testenv.GitServer, mod func(*git.Config)) *git.Source {
	t.Helper()
	cfg := git.Config{
		Name:        "corp",
		Patterns:    []string{host + "/*/*"},
		URL:         "https://" + host + "/{path}.git",
		Credentials: git.Credentials{Username: user, Password: password},
		Dir:         t.TempDir(),
		RefsTTL:     time.Hour,
		Env:         srv.GitEnv(),
		HTTPClient:  srv.Client(),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := git.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// fetch reads path from src.
func fetch(t *testing.T, src upstream.Source, path string) ([]byte, error) {
	t.Helper()
	resp, err := src.Fetch(t.Context(), path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	if resp.Size >= 0 && int64(len(data)) != resp.Size {
		t.Errorf("%s: read %d bytes, Size says %d", path, len(data), resp.Size)
	}
	return data, nil
}

func mustFetch(t *testing.T, src upstream.Source, path string) []byte {
	t.Helper()
	data, err := fetch(t, src, path)
	if err != nil {
		t.Fatalf("Fetch(%q): %v", path, err)
	}
	return data
}

// escaped returns the protocol path of file ("list", "latest" or
// "{version}.{ext}") for modPath.
func escaped(t *testing.T, modPath, file string) string {
	t.Helper()
	em, err := module.EscapePath(modPath)
	if err != nil {
		t.Fatal(err)
	}
	switch file {
	case "list":
		return em + "/@v/list"
	case "latest":
		return em + "/@latest"
	}
	i := strings.LastIndex(file, ".")
	ev, err := module.EscapeVersion(file[:i])
	if err != nil {
		t.Fatal(err)
	}
	return em + "/@v/" + ev + file[i:]
}

type info struct {
	Version string
	Time    time.Time
	Origin  struct{ VCS, URL, Subdir, Hash, Ref string }
}

func parseInfo(t *testing.T, data []byte) info {
	t.Helper()
	var i info
	if err := json.Unmarshal(data, &i); err != nil {
		t.Fatalf("parsing .info %s: %v", data, err)
	}
	return i
}

func modHash(t *testing.T, data []byte) string {
	t.Helper()
	h, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func zipHash(t *testing.T, data []byte) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "m.zip")
	if err := os.WriteFile(file, data, 0o666); err != nil {
		t.Fatal(err)
	}
	h, err := dirhash.HashZip(file, dirhash.Hash1)
	if err != nil {
		t.Fatalf("hashing zip: %v", err)
	}
	return h
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
