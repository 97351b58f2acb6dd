package server_test

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/testenv"
)

// mountSmallDisk mounts a tmpfs of the given size for the test. Mounting
// needs root (CI runs as root); elsewhere the test cannot make a full disk
// and says so.
func mountSmallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Unavailable(t, "cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// TestDiskFull: when the data directory's disk is full, a new download fails
// with 507 and a message saying so, nothing partial is left behind, what
// was stored before is still served intact, and fetching works again once
// there is room.
func TestDiskFull(t *testing.T) {
	disk := mountSmallDisk(t, "3m")
	large, err := testenv.LargeModule("example.com/large", "v1.0.0", 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.NewUpstream(t, append(testenv.Fixtures(t), large))
	in := startModgate(t, up, func(c *config.Config) {
		c.DataDir = filepath.Join(disk, "data")
		c.Cache.MemoryMB = 0 // read the stored file back from disk
	})
	hello := up.Module("example.com/hello", "v1.0.0")
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.zip"); code != http.StatusOK || sha(body) != sha(hello.Zip) {
		t.Fatalf("warming: %d", code)
	}

	code, body, _ := in.get(t, "/example.com/large/@v/v1.0.0.zip")
	if code != http.StatusInsufficientStorage || !strings.Contains(string(body), "storage is full") {
		t.Errorf("download onto a full disk: %d %q; want 507 saying storage is full", code, body)
	}
	if in.stored("example.com/large/@v/v1.0.0.zip") {
		t.Error("a partial zip was stored")
	}
	for _, f := range listFiles(t, filepath.Join(disk, "data")) {
		if base := filepath.Base(f); strings.HasPrefix(base, ".tmp") || strings.HasPrefix(base, "fill-") {
			t.Errorf("left behind %s", f)
		}
	}
	if code, body, _ := in.get(t, "/example.com/hello/@v/v1.0.0.zip"); code != http.StatusOK || sha(body) != sha(hello.Zip) {
		t.Errorf("stored zip after the failure: %d, intact %v", code, sha(body) == sha(hello.Zip))
	}
	// Small files still fit: the failed download left no space taken.
	if code, _, _ := in.get(t, "/example.com/hello/@v/v1.1.0.zip"); code != http.StatusOK {
		t.Errorf("small download after the failure: %d, want 200", code)
	}
}
