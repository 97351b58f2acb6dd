// Package policytest is the conformance suite of the policy's state
// stores: the files of one modgate and the tables replicas share pass the
// same tests.
package policytest

import (
	"context"
	"io"
	"io/fs"
	"slices"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/policy"
)

// RunLicenses runs the LicenseStore suite. open returns an empty store.
func RunLicenses(t *testing.T, open func(t *testing.T) policy.LicenseStore) {
	ctx := context.Background()
	mod := module.Version{Path: "example.com/Lib", Version: "v1.2.0"}
	lic := policy.License{IDs: []string{"Apache-2.0", "MIT"}, Files: []string{"LICENSE"}, Unrecognized: []string{"COPYING"}}

	t.Run("PutGet", func(t *testing.T) {
		s := open(t)
		if _, ok, err := s.GetLicense(ctx, mod); ok || err != nil {
			t.Fatalf("GetLicense of an empty store = %v, %v", ok, err)
		}
		if err := s.PutLicense(ctx, mod, lic); err != nil {
			t.Fatal(err)
		}
		if err := s.PutLicense(ctx, mod, lic); err != nil {
			t.Errorf("PutLicense again: %v", err)
		}
		got, ok, err := s.GetLicense(ctx, mod)
		if err != nil || !ok || !slices.Equal(got.IDs, lic.IDs) || !slices.Equal(got.Files, lic.Files) || !slices.Equal(got.Unrecognized, lic.Unrecognized) {
			t.Errorf("GetLicense = %+v, %v, %v; want %+v", got, ok, err, lic)
		}
		// Another case of the path, another version: other modules.
		for _, other := range []module.Version{{Path: "example.com/lib", Version: "v1.2.0"}, {Path: "example.com/Lib", Version: "v1.2.1"}} {
			if _, ok, _ := s.GetLicense(ctx, other); ok {
				t.Errorf("GetLicense(%v) found %v's result", other, mod)
			}
		}
	})

	t.Run("DetectorUsesStore", func(t *testing.T) {
		s := open(t)
		s.PutLicense(ctx, mod, lic)
		// A detector that cannot open zips answers from the store alone.
		d := policy.NewSharedLicenseDetector(s, func(module.Version) (io.ReadCloser, error) { return nil, fs.ErrNotExist })
		got, ok := d.License(mod.Path, mod.Version)
		if !ok || !slices.Equal(got.IDs, lic.IDs) {
			t.Errorf("License from the store = %+v, %v; want %+v", got, ok, lic)
		}
	})
}
