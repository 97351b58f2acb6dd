package webhook

import (
	"context"
	"sync"
	"time"
)

// A DeliveryStore remembers accepted deliveries where every replica sees
// them (package state/postgres), in place of Config.DeliveriesFile, so
// that a delivery replayed to another replica behind the same load
// balancer is ignored as well.
//
// Implementations must be safe for concurrent use by several processes.
type DeliveryStore interface {
	// Claim records keys as seen at now, unless one of them was seen
	// within window before now: then it reports false and records
	// nothing. Of two concurrent Claims sharing a key, one wins.
	Claim(ctx context.Context, keys []string, now time.Time, window time.Duration) (bool, error)
	// Release forgets keys, claimed by a delivery whose handling failed,
	// so that the provider's retry is handled.
	Release(ctx context.Context, keys []string) error
}

// claimer is what the Handler needs of its record of deliveries: the file
// (deliveries) or a DeliveryStore.
type claimer interface {
	claim(keys []string) (bool, error)
	release(keys []string)
}

// storeClaimer adapts a DeliveryStore.
type storeClaimer struct {
	s      DeliveryStore
	window time.Duration
	now    func() time.Time
}

// storeTimeout bounds one DeliveryStore operation: the provider gives up
// after ten seconds.
const storeTimeout = 3 * time.Second

func (c storeClaimer) claim(keys []string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	fresh, err := c.s.Claim(ctx, keys, c.now(), c.window)
	if err != nil {
		// As with a file that cannot be written: the delivery is
		// handled, replays are not recognised meanwhile.
		return true, err
	}
	return fresh, nil
}

func (c storeClaimer) release(keys []string) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	c.s.Release(ctx, keys)
}

// FileDeliveryStore returns the deliveries file as a DeliveryStore, for
// the conformance suite: what a Handler without a Store uses. It is safe
// for use by one process; max bounds the entries kept.
func FileDeliveryStore(file string, max int) (DeliveryStore, error) {
	if err := ensureDir(file); err != nil {
		return nil, err
	}
	return &fileDeliveries{file: file, max: max}, nil
}

// fileDeliveries opens the file at every call with the window asked for;
// a test helper, not the Handler's path.
type fileDeliveries struct {
	mu   sync.Mutex
	file string
	max  int
}

func (f *fileDeliveries) Claim(_ context.Context, keys []string, now time.Time, window time.Duration) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := openDeliveries(f.file, window, f.max, func() time.Time { return now })
	if err != nil {
		return false, err
	}
	return d.claim(keys)
}

func (f *fileDeliveries) Release(_ context.Context, keys []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, err := openDeliveries(f.file, DefaultReplayWindow, f.max, time.Now)
	if err != nil {
		return err
	}
	d.release(keys)
	return nil
}
