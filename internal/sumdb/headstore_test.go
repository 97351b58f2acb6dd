package sumdb_test

import (
	"testing"

	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/sumdb/sumdbtest"
)

// TestFileHeadStore runs the HeadStore suite against the state files.
func TestFileHeadStore(t *testing.T) {
	sumdbtest.RunHeadStore(t, func(t *testing.T) sumdb.HeadStore { return sumdb.NewFileHeadStore(t.TempDir()) })
}
