package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPolicyReloadOnSIGHUP: SIGHUP reloads the policy from the config
// file. The new file keeps the old modification time, so the file-change
// poll cannot be what notices it; a broken file sent the same way is
// refused and the policy in force stays.
func TestPolicyReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "modgate.yaml")
	policy := func(denied string) string {
		return "data_dir: " + filepath.Join(dir, "data") + "\n" +
			"policy:\n  rules:\n    - name: deny-one\n      deny: {modules: [" + denied + "]}\n"
	}
	if err := os.WriteFile(cfgFile, []byte(policy("example.com/aaaa")), 0o600); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	mtime := fi.ModTime()
	// rewrite replaces the file with content carrying the old mtime, in
	// one rename, so that the poll never sees a new mtime.
	rewrite := func(content string) {
		t.Helper()
		next := cfgFile + ".next"
		if err := os.WriteFile(next, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(next, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(next, cfgFile); err != nil {
			t.Fatal(err)
		}
	}
	p := startBinary(t, []string{"GOPROXY=off", "GOSUMDB=off"}, "-config", cfgFile)
	verdict := func(mod string) string {
		t.Helper()
		resp, err := http.Get(p.URL + "/policy/explain?module=" + mod + "&version=v1.0.0")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, v := range []string{"block", "allow", "warn"} {
			if strings.Contains(string(body), `"verdict": "`+v+`"`) {
				return v
			}
		}
		t.Fatalf("explain %s: %d %s", mod, resp.StatusCode, body)
		return ""
	}
	if a, b := verdict("example.com/aaaa"), verdict("example.com/bbbb"); a != "block" || b != "allow" {
		t.Fatalf("before reload: aaaa %s, bbbb %s; want block, allow", a, b)
	}

	rewrite(policy("example.com/bbbb"))
	time.Sleep(2500 * time.Millisecond) // past a poll of the file: it must not notice
	if a := verdict("example.com/aaaa"); a != "block" {
		t.Fatalf("the policy changed without SIGHUP (aaaa is %s); the test cannot tell the two triggers apart", a)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, `"msg":"policy reloaded","trigger":"SIGHUP"`)
	if a, b := verdict("example.com/aaaa"), verdict("example.com/bbbb"); a != "allow" || b != "block" {
		t.Errorf("after SIGHUP: aaaa %s, bbbb %s; want allow, block", a, b)
	}

	rewrite("policy:\n  rules:\n    - name: broken\n      deny: {modules: [\"a b\"]}\n")
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, `"msg":"policy reload refused; the previous policy stays in force","trigger":"SIGHUP"`)
	if b := verdict("example.com/bbbb"); b != "block" {
		t.Errorf("after a broken reload: bbbb %s, want the previous policy's block", b)
	}
}

// waitLog waits up to 10s for modgate to log a line containing s.
func waitLog(t *testing.T, p *process, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(p.logs.String(), s) {
			return
		}
	}
	t.Fatalf("modgate never logged %s:\n%s", s, p.logs)
}
