package policy_test

import (
	"testing"

	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/policy/policytest"
)

func TestFileLicenseStore(t *testing.T) {
	policytest.RunLicenses(t, func(t *testing.T) policy.LicenseStore { return policy.FileLicenseStore(t.TempDir()) })
}

func TestFileAgeStore(t *testing.T) {
	policytest.RunAges(t, func(t *testing.T) policy.AgeStore {
		s, closeFn, err := policy.OpenFileAgeStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		return s
	})
}
