package modgraph

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rogpeppe/go-internal/txtar"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/testenv"
)

// graphModules loads testdata/graph.txtar as fixtures.
func graphModules(t *testing.T) []*testenv.Module {
	t.Helper()
	ar, err := txtar.ParseFile("testdata/graph.txtar")
	if err != nil {
		t.Fatal(err)
	}
	var mods []*testenv.Module
	for _, f := range ar.Files {
		path, version, _ := strings.Cut(f.Name, "@")
		src := fmt.Sprintf("module %s\nversion %s\n-- go.mod --\n%s-- p.go --\npackage p\n", path, version, f.Data)
		m, err := testenv.ParseModule([]byte(src))
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		mods = append(mods, m)
	}
	return mods
}

// httpLoader reads go.mod files from a GOPROXY.
func httpLoader(base string) Loader {
	return func(ctx context.Context, m module.Version) ([]byte, error) {
		p, err := module.EscapePath(m.Path)
		if err != nil {
			return nil, err
		}
		v, err := module.EscapeVersion(m.Version)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+p+"/@v/"+v+".mod", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s", resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
}

// TestResolveMatchesGoList compares Resolve's build list with the go
// command's `go list -m all` for main modules that mix pruned and unpruned
// dependencies, replacements, exclusions and cycles back to the main module.
func TestResolveMatchesGoList(t *testing.T) {
	up := testenv.NewUpstream(t, append(testenv.Fixtures(t), graphModules(t)...))
	tests := []struct {
		name  string
		gomod string
		// loaded lists go.mod files that must (or, prefixed "!", must not)
		// be read: what pruning means.
		loaded []string
	}{
		{
			name:   "pruned main, pruned dependency",
			gomod:  "module example.com/main\n\ngo 1.21\n\nrequire example.com/a v1.0.0\n",
			loaded: []string{"example.com/a@v1.0.0", "!example.com/b@v1.0.0"},
		},
		{
			name:   "unpruned dependency loads its whole graph",
			gomod:  "module example.com/main\n\ngo 1.21\n\nrequire (\n\texample.com/u v1.0.0\n\texample.com/a v1.0.0\n)\n",
			loaded: []string{"example.com/u@v1.0.0", "example.com/d@v1.0.0", "example.com/e@v1.0.0", "example.com/f@v1.0.0", "!example.com/b@v1.0.0"},
		},
		{
			name:   "unpruned main",
			gomod:  "module example.com/main\n\ngo 1.16\n\nrequire example.com/a v1.0.0\n",
			loaded: []string{"example.com/b@v1.0.0", "example.com/c@v1.1.0"},
		},
		{
			name:   "no go directive in a dependency",
			gomod:  "module example.com/main\n\ngo 1.22\n\nrequire (\n\texample.com/nogo v1.0.0\n\texample.com/greet v1.0.0\n\texample.com/legacy v2.0.0+incompatible\n)\n",
			loaded: []string{"example.com/f@v1.0.0", "example.com/legacy@v2.0.0+incompatible", "!example.com/hello@v1.0.0"},
		},
		{
			name:   "replacement by another module",
			gomod:  "module example.com/main\n\ngo 1.21\n\nrequire example.com/g v1.0.0\n\nreplace example.com/g v1.0.0 => example.com/g2 v1.0.0\n",
			loaded: []string{"example.com/g@v1.0.0", "!example.com/h@v1.0.0"},
		},
		{
			name:   "higher version selected, cycle to main, exclusion",
			gomod:  "module example.com/main\n\ngo 1.21\n\nrequire (\n\texample.com/x v1.0.0\n\texample.com/b v1.0.0\n\texample.com/c v1.0.0\n)\n\nexclude example.com/c v1.1.0\n",
			loaded: []string{"example.com/b@v1.0.0", "!example.com/x/cycle@v1.0.0", "!example.com/b@v1.2.0"},
		},
		{
			name:   "exclusion in an unpruned graph",
			gomod:  "module example.com/main\n\ngo 1.16\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/x v1.0.0\n)\n\nexclude example.com/c v1.1.0\n",
			loaded: []string{"example.com/b@v1.2.0", "example.com/x/cycle@v1.0.0", "example.com/main@v0.1.0", "!example.com/c@v1.1.0"},
		},
	}
	env := testenv.GoEnv(t, up.URL(), up.VerifierKey(), "GOFLAGS=-modcacherw -mod=mod")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(tt.gomod), 0o666); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := testenv.RunGo(t, dir, env, "list", "-m", "-f", "{{.Path}} {{.Version}}", "all")
			if err != nil {
				t.Fatalf("go list -m all: %v\n%s", err, stderr)
			}
			want := strings.Split(strings.TrimSpace(out), "\n")[1:] // without the main module

			f, err := modfile.Parse("go.mod", []byte(tt.gomod), nil)
			if err != nil {
				t.Fatal(err)
			}
			g, err := Resolve(t.Context(), Main{File: f, Dir: dir}, httpLoader(up.URL()), 4)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			var got []string
			for _, m := range g.BuildList {
				got = append(got, m.Path+" "+m.Version)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("build list (-go list -m all +Resolve):\n%s", diff)
			}
			loaded := make(map[string]bool)
			for _, m := range g.Loaded {
				loaded[m.Path+"@"+m.Version] = true
			}
			for _, l := range tt.loaded {
				name, not := strings.CutPrefix(l, "!")
				if loaded[name] == not {
					t.Errorf("go.mod of %s loaded = %v, want %v (loaded: %v)", name, loaded[name], !not, g.Loaded)
				}
			}
			if tt.name == "replacement by another module" {
				if r, ok := g.Fetch(module.Version{Path: "example.com/g", Version: "v1.0.0"}); !ok || r.Path != "example.com/g2" {
					t.Errorf("Fetch(example.com/g@v1.0.0) = %v, %v, want example.com/g2@v1.0.0", r, ok)
				}
			}
		})
	}
}
