package integrity

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/modgate/modgate/internal/storage"
)

// A RepairFunc fetches path@version's file (key) again from the upstream
// and stores it only if it verifies: the mirror's fill path. It is called
// after the bad copy was quarantined.
type RepairFunc func(ctx context.Context, path, version, key string) error

// A Recorded lists what the ledger says modgate served, for reporting
// files that vanished from the store; it calls fn for every recorded
// go.mod ("mod") and zip ("zip").
type Recorded func(fn func(path, version, file string))

// RunOptions configure one pass over the store.
type RunOptions struct {
	// Quarantine moves corrupt files aside (Quarantine).
	Quarantine bool
	// Repair, when set, quarantines corrupt files and fetches missing and
	// corrupt ones again, then checks the new copy.
	Repair RepairFunc
	// Recorded, when set, adds a Missing finding for every recorded file
	// the store lacks.
	Recorded Recorded
	// Rate bounds the files checked per second (0: as fast as possible).
	Rate float64
	// Workers is how many files are hashed at once (default GOMAXPROCS;
	// 1 when Rate is set).
	Workers int
	// OnFile is called after every file with its finding (from several
	// goroutines at once when Workers > 1): for progress and metrics.
	OnFile func(Finding)
}

// A Summary counts what one pass found.
type Summary struct {
	Files        int           `json:"files"`
	Bytes        int64         `json:"bytes"`
	OK           int           `json:"ok"`
	Corrupt      int           `json:"corrupt"`
	Missing      int           `json:"missing"`
	Unverifiable int           `json:"unverifiable"`
	Quarantined  int           `json:"quarantined"`
	Repaired     int           `json:"repaired"`
	Duration     time.Duration `json:"duration_ns"`
}

// Problems reports whether anything was found that was not repaired.
func (s Summary) Problems() bool { return s.Corrupt+s.Missing+s.Unverifiable-s.Repaired > 0 }

// Run checks every .mod and .zip in the store and returns the findings
// that are not OK, sorted as the store walked them. It fails only when the
// store cannot be walked or ctx ends; bad files are findings, not errors.
func (c *Checker) Run(ctx context.Context, opts RunOptions) (Summary, []Finding, error) {
	w, ok := c.Store.(storage.Walker)
	if !ok {
		return Summary{}, nil, fmt.Errorf("verifying: the store cannot list its files")
	}
	start := time.Now()
	c.memo.Store(new(sync.Map))
	defer c.memo.Store(nil)
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
		if opts.Rate > 0 {
			workers = 1
		}
	}
	var (
		mu       sync.Mutex
		sum      Summary
		findings []Finding
		stored   = make(map[string]bool)
	)
	record := func(f Finding) {
		mu.Lock()
		defer mu.Unlock()
		sum.Files++
		sum.Bytes += f.Size
		switch f.Status {
		case OK:
			sum.OK++
		case Corrupt:
			sum.Corrupt++
		case Missing:
			sum.Missing++
		case Unverifiable:
			sum.Unverifiable++
		}
		switch f.Action {
		case "quarantined":
			sum.Quarantined++
		case "repaired":
			sum.Repaired++
			if f.Status == Corrupt {
				sum.Quarantined++
			}
		}
		if f.Status != OK {
			findings = append(findings, f)
		}
	}
	do := func(key string, missing Finding) {
		f := missing
		if f.Status == "" {
			f = c.Check(ctx, key)
		}
		f = c.act(ctx, f, opts)
		record(f)
		if opts.OnFile != nil {
			opts.OnFile(f)
		}
	}

	keys := make(chan string)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for k := range keys {
				do(k, Finding{})
			}
		})
	}
	var tick <-chan time.Time
	if opts.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / opts.Rate))
		defer t.Stop()
		tick = t.C
	}
	walkErr := w.Walk(ctx, "", func(name string) error {
		first, _, _ := strings.Cut(name, "/")
		if !strings.Contains(first, ".") {
			return nil // sumdb/, answers/, quarantine/, tombstones/
		}
		if _, _, _, ok := ParseKey(name); !ok {
			return nil
		}
		mu.Lock()
		stored[name] = true
		mu.Unlock()
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case keys <- name:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	close(keys)
	wg.Wait()
	if walkErr != nil {
		return sum, findings, fmt.Errorf("verifying: walking the store: %w", walkErr)
	}
	if opts.Recorded != nil {
		opts.Recorded(func(path, version, file string) {
			key, err := FileKey(path, version, file)
			if err != nil || stored[key] || ctx.Err() != nil {
				return
			}
			do(key, Finding{Key: key, Module: path, Version: version, File: file, Status: Missing,
				Reason: "recorded in the ledger as served, but not in the store"})
		})
	}
	sum.Duration = time.Since(start)
	return sum, findings, ctx.Err()
}

// act quarantines and repairs a bad file as opts say, and records what
// happened in f.Action.
func (c *Checker) act(ctx context.Context, f Finding, opts RunOptions) Finding {
	if f.Status != Corrupt && f.Status != Missing {
		return f
	}
	if f.Status == Corrupt && (opts.Quarantine || opts.Repair != nil) {
		if err := c.quarantine(ctx, f.Key); err != nil {
			f.Action = "quarantine failed: " + err.Error()
			return f
		}
		f.Action = "quarantined"
	}
	if opts.Repair == nil {
		return f
	}
	if err := opts.Repair(ctx, f.Module, f.Version, f.Key); err != nil {
		f.Action = "repair failed: " + err.Error()
		return f
	}
	if again := c.Check(ctx, f.Key); again.Status != OK {
		f.Action = "repair failed: the new copy is " + string(again.Status) + ": " + again.Reason
		return f
	}
	f.Action = "repaired"
	return f
}
