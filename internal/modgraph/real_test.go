package modgraph

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/testenv"
)

// TestResolveBenchProject compares Resolve with `go list -m all` on the
// benchmark workload (bench/project: about 500 modules, pruned and
// unpruned), reading go.mod files from the upstream of `go env GOPROXY`.
// It runs only with MODGATE_E2E_REAL=1 (testenv.RealNetworkClient).
func TestResolveBenchProject(t *testing.T) {
	client := testenv.RealNetworkClient(t)
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	var base string
	for p := range strings.FieldsFuncSeq(strings.TrimSpace(string(out)), func(r rune) bool { return r == ',' || r == '|' }) {
		if strings.HasPrefix(p, "http") {
			base = strings.TrimSuffix(p, "/")
			break
		}
	}
	if base == "" {
		t.Fatalf("go env GOPROXY = %q has no proxy", out)
	}
	dir, err := filepath.Abs("../../bench/project")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}} {{.Version}}", "all")
	cmd.Dir = dir
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all: %v", err)
	}
	want := strings.Split(strings.TrimSpace(string(list)), "\n")[1:]

	main, err := ReadMain(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	load := func(ctx context.Context, m module.Version) ([]byte, error) {
		p, _ := module.EscapePath(m.Path)
		v, _ := module.EscapeVersion(m.Version)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/"+p+"/@v/"+v+".mod", nil)
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s", resp.Status)
		}
		return io.ReadAll(resp.Body)
	}
	g, err := Resolve(t.Context(), main, load, 16)
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
	t.Logf("%d modules in the build list, %d go.mod files read", len(g.BuildList), len(g.Loaded))
}
