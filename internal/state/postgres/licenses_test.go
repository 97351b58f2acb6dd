package postgres_test

import (
	"testing"

	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/policy/policytest"
)

func TestLicensesConformance(t *testing.T) {
	policytest.RunLicenses(t, func(t *testing.T) policy.LicenseStore {
		db, _ := migrated(t)
		return db.Licenses()
	})
}

func TestAgesConformance(t *testing.T) {
	policytest.RunAges(t, func(t *testing.T) policy.AgeStore {
		db, _ := migrated(t)
		return db.Ages()
	})
}
