package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/integrity"
	"github.com/modgate/modgate/internal/testenv"
)

// TestCorruptPrivateZipFromGit: a private module served from a Git server
// (the client has GONOSUMDB, so only modgate can notice): verify finds a
// flipped byte in its stored zip against the ledger, --repair fetches it
// again from the Git server (through its own Git mirrors), and once more
// corrupted, the serve path refuses it and the next request is served the
// genuine zip.
func TestCorruptPrivateZipFromGit(t *testing.T) {
	e := startPrivate(t, gitPassword)
	const mod = "corp.example.com/platform/auth@v1.0.0"
	want := downloadJSON(t, e.clientEnv(t), mod)[mod]
	if want.Error != "" || want.Sum == "" {
		t.Fatalf("go mod download %s: %+v", mod, want)
	}
	data := e.mg.DataDir
	e.mg.shutdown(t)

	pwFile := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(pwFile, []byte(gitPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := maintenanceConfig(t, e.up, data)
	yaml := string(mustRead(t, cfgFile)) + fmt.Sprintf(
		"private:\n  sources:\n    - name: corp\n      patterns: [%q]\n      url: %q\n      username: %q\n      password_file: %q\n      ca_file: %q\n",
		testenv.GitHost+"/*/*", "https://"+e.git.Addr()+"/{path}.git", gitUser, pwFile, e.git.CAFile)
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}

	const zipKey = "corp.example.com/platform/auth/@v/v1.0.0.zip"
	flipByte(t, data, zipKey)
	code, rep := runVerify(t, cfgFile)
	if code != 1 || len(rep.Findings) != 1 || rep.Findings[0].Key != zipKey || rep.Findings[0].Status != integrity.Corrupt {
		t.Fatalf("verify: exit %d, findings %+v; want the private zip corrupt", code, rep.Findings)
	}
	code, rep = runVerify(t, cfgFile, "--repair")
	if code != 0 || rep.Summary.Repaired != 1 {
		t.Fatalf("verify --repair: exit %d, summary %+v, findings %+v", code, rep.Summary, rep.Findings)
	}
	if left, _ := filepath.Glob(filepath.Join(data, "maintenance-*")); len(left) != 0 {
		t.Errorf("verify left %v", left)
	}

	// The serve path: a restarted modgate refuses the corrupt copy, then
	// serves the genuine one again.
	flipByte(t, data, zipKey)
	cfg, err := config.Load(cfgFile, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e.mg = startWith(t, cfg, e.up, func(c *config.Config) { c.DataDir = data })
	stderr := failGo(t, t.TempDir(), e.clientEnv(t), "mod", "download", mod)
	if !strings.Contains(stderr, "502 Bad Gateway") || !strings.Contains(stderr, "the stored zip is corrupt") {
		t.Errorf("go mod download of a corrupt private zip:\n%s", stderr)
	}
	if got := downloadJSON(t, e.clientEnv(t), mod)[mod]; got.Error != "" || got.Sum != want.Sum {
		t.Errorf("after the refusal: %+v, want sum %s", got, want.Sum)
	}
}
