package server_test

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// TestAuditAnchors runs modgate with its audit key and a copy of every
// checkpoint outside the data directory (a file and syslog over UDP): the
// log verifies against the copies with the key from outside.
func TestAuditAnchors(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	outside := t.TempDir()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	var syslogLines []string
	got := make(chan struct{})
	go func() {
		defer close(got)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			syslogLines = append(syslogLines, string(buf[:n]))
		}
	}()
	in := startModgate(t, up, func(c *config.Config) {
		c.Audit.KeyFile = filepath.Join(outside, "keys", "audit.key")
		c.Audit.AnchorFile = filepath.Join(outside, "checkpoints")
		c.Audit.AnchorSyslog = "udp://" + pc.LocalAddr().String()
	})
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	in.shutdown(t)
	// The final checkpoint was sent before shutdown returned, but may
	// still wait in the socket: read until the socket stays quiet.
	pc.SetReadDeadline(time.Now().Add(time.Second))
	<-got

	if _, err := os.Stat(filepath.Join(in.DataDir, "audit.key")); err == nil {
		t.Errorf("a signing key was written into the data directory despite audit.key_file")
	}
	pub, err := audit.LoadPublicKey(filepath.Join(outside, "keys", "audit.key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(in.DataDir, "audit")
	rep, err := audit.VerifyWith(dir, pub, audit.VerifyOptions{Checkpoints: filepath.Join(outside, "checkpoints")})
	if err != nil || rep.Outside == 0 || !rep.Final {
		t.Fatalf("verify against the anchor file = %v (%d outside checkpoints, final %v)\n%s", err, rep.Outside, rep.Final, rep)
	}
	syslogCopy := filepath.Join(outside, "syslog")
	os.WriteFile(syslogCopy, []byte(strings.Join(syslogLines, "\n")+"\n"), 0o644)
	rep, err = audit.VerifyWith(dir, pub, audit.VerifyOptions{Checkpoints: syslogCopy})
	if err != nil || rep.Outside == 0 {
		t.Fatalf("verify against the syslog copy = %v (%d outside checkpoints)\n%s", err, rep.Outside, rep)
	}
}

// TestAuditAnchorFailing checks that an anchor that cannot be written
// holds up no request: it is counted in a metric and logged.
func TestAuditAnchorFailing(t *testing.T) {
	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	in := startModgate(t, up, func(c *config.Config) {
		c.Audit.AnchorFile = filepath.Join(t.TempDir(), "missing", "checkpoints")
		c.Audit.CheckpointInterval = config.Duration{Duration: time.Second}
	})
	mustGo(t, t.TempDir(), goEnv(t, in, up), "mod", "download", "example.com/hello@v1.0.0")
	re := regexp.MustCompile(`(?m)^modgate_audit_errors_total\{kind="anchor"\} ([1-9][0-9]*)$`)
	pollUntil(t, 10*time.Second, func() string {
		_, body, _ := in.get(t, "/metrics")
		if re.Match(body) {
			return ""
		}
		return "no anchor error counted:\n" + grepLines(string(body), "audit")
	})
	// Requests are still served.
	if code, body, _ := in.get(t, "/example.com/hello/@v/list"); code != 200 {
		t.Errorf("list with a failing anchor = %d %q", code, body)
	}
}
