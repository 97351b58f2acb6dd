package bundle

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestGoSumHash: the hashes in a manifest are the go.sum hashes the go
// command computes.
func TestGoSumHash(t *testing.T) {
	for _, m := range testenv.Fixtures(t) {
		dir := t.TempDir()
		for ext, data := range map[string][]byte{".mod": m.Mod, ".zip": m.Zip} {
			local := filepath.Join(dir, "f"+ext)
			if err := os.WriteFile(local, data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := goSumHash("modules/"+m.Path+"/@v/"+m.Version+ext, local)
			want := m.ModHash
			if ext == ".zip" {
				want = m.ZipHash
			}
			if err != nil || got != want {
				t.Errorf("goSumHash(%s%s) = %q, %v; want %q", m, ext, got, err, want)
			}
		}
	}
}
