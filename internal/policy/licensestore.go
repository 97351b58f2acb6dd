package policy

import (
	"context"
	"time"

	"golang.org/x/mod/module"
)

// A LicenseStore keeps licence results where every replica reads them
// (package state/postgres), in place of the detector's directory, so that
// a zip scanned by one replica is not scanned again by the others.
// Results never change: a version's zip is immutable.
//
// Implementations must be safe for concurrent use by several processes.
type LicenseStore interface {
	// GetLicense returns the stored result for mod; ok is false when
	// there is none.
	GetLicense(ctx context.Context, mod module.Version) (lic License, ok bool, err error)
	// PutLicense stores the result for mod. Storing a result that is
	// there already is not an error.
	PutLicense(ctx context.Context, mod module.Version, lic License) error
}

// licenseStoreTimeout bounds one LicenseStore operation.
const licenseStoreTimeout = 5 * time.Second

// NewSharedLicenseDetector returns a detector keeping its results in
// store instead of a directory.
func NewSharedLicenseDetector(store LicenseStore, open ZipOpener) *LicenseDetector {
	d := NewLicenseDetector("", open)
	d.store = store
	return d
}

// FileLicenseStore returns the results directory as a LicenseStore: what
// NewLicenseDetector(dir, ...) uses, for the conformance suite.
func FileLicenseStore(dir string) LicenseStore { return fileLicenses{d: NewLicenseDetector(dir, nil)} }

type fileLicenses struct{ d *LicenseDetector }

func (f fileLicenses) GetLicense(_ context.Context, mod module.Version) (License, bool, error) {
	lic, ok := f.d.readCache(mod)
	return lic, ok, nil
}

func (f fileLicenses) PutLicense(_ context.Context, mod module.Version, lic License) error {
	return f.d.writeCache(mod, lic)
}

// readStore and writeStore are readCache and writeCache with a store.
func (d *LicenseDetector) readStore(mod module.Version) (License, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), licenseStoreTimeout)
	defer cancel()
	lic, ok, err := d.store.GetLicense(ctx, mod)
	return lic, ok && err == nil
}

func (d *LicenseDetector) writeStore(mod module.Version, lic License) error {
	ctx, cancel := context.WithTimeout(context.Background(), licenseStoreTimeout)
	defer cancel()
	return d.store.PutLicense(ctx, mod, lic)
}
