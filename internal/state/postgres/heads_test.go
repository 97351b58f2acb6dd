package postgres_test

import (
	"testing"

	"github.com/modgate/modgate/internal/sumdb"
	"github.com/modgate/modgate/internal/sumdb/sumdbtest"
)

func TestHeadsConformance(t *testing.T) {
	sumdbtest.RunHeadStore(t, func(t *testing.T) sumdb.HeadStore {
		db, _ := migrated(t)
		return db.Heads()
	})
}
