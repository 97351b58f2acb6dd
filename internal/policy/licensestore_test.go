package policy_test

import (
	"testing"

	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/policy/policytest"
)

func TestFileLicenseStore(t *testing.T) {
	policytest.RunLicenses(t, func(t *testing.T) policy.LicenseStore { return policy.FileLicenseStore(t.TempDir()) })
}
