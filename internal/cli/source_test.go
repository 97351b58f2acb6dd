package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestSourceTest runs `modgate source test` against a real Git server over
// HTTPS with Basic authentication, with the right and a wrong password.
func TestSourceTest(t *testing.T) {
	gs := testenv.NewGitServer(t, "bot", "right")
	repo := gs.Repo(t, "platform/auth")
	repo.Commit("first", map[string]string{"go.mod": "module corp.example.com/platform/auth\n"})
	repo.Tag("v1.0.0", "HEAD")

	run := func(password string, args ...string) (int, string, string) {
		t.Helper()
		dir := t.TempDir()
		pw := filepath.Join(dir, "pw")
		if err := os.WriteFile(pw, []byte(password), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(dir, "modgate.yaml")
		yaml := fmt.Sprintf(`data_dir: %s
upstream:
  goproxy: "off"
sumdb:
  gosumdb: "off"
private:
  sources:
    - name: corp
      patterns: ["corp.example.com/*/*"]
      url: "https://%s/{path}.git"
      username: bot
      password_file: %s
      ca_file: %s
`, filepath.Join(dir, "data"), gs.Addr(), pw, gs.CAFile)
		if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"source", "test", "--config", cfg}, args...), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}

	code, out, errOut := run("right", "corp", "corp.example.com/platform/auth")
	if code != 0 || !strings.Contains(out, "ok   credentials") || !strings.Contains(out, "1 tags") {
		t.Errorf("source test with the right password = %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("pw-Zq9-wrong", "corp", "corp.example.com/platform/auth")
	if code != 1 || !strings.Contains(out, "FAIL credentials") || !strings.Contains(out, "authentication rejected") {
		t.Errorf("source test with a wrong password = %d, want 1 naming the credentials\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "pw-Zq9") {
		t.Errorf("the password appears in the output:\n%s%s", out, errOut)
	}
	code, _, errOut = run("right", "nosuch")
	if code != 2 || !strings.Contains(errOut, `no private source "nosuch" (configured: corp)`) {
		t.Errorf("source test of an unknown source = %d, %q", code, errOut)
	}
}
