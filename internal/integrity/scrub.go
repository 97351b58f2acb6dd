package integrity

import (
	"context"
	"log/slog"
	"time"
)

// ScrubConfig configures the background scrub.
type ScrubConfig struct {
	Checker *Checker
	// Interval is the time from the start of one pass to the start of the
	// next (a pass that takes longer is followed at once by the next).
	Interval time.Duration
	// Rate bounds the files checked per second, so that a scrub never
	// competes with clients for the disk (default 20).
	Rate float64
	// Repair fetches corrupt and missing files again (the mirror's fill);
	// nil only quarantines.
	Repair   RepairFunc
	Recorded Recorded
	Logger   *slog.Logger
	// OnFile is told about every file checked, for metrics.
	OnFile func(Finding)
}

// Scrub checks the whole store every Interval, at a bounded rate,
// quarantining corrupt files and repairing what it can, until ctx ends. It
// logs each pass's summary (Info), and every bad file (Error: an operator
// must look at the disk).
func Scrub(ctx context.Context, cfg ScrubConfig) {
	if cfg.Rate <= 0 {
		cfg.Rate = 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "scrub")
	for {
		start := time.Now()
		sum, findings, err := cfg.Checker.Run(ctx, RunOptions{
			Quarantine: true,
			Repair:     cfg.Repair,
			Recorded:   cfg.Recorded,
			Rate:       cfg.Rate,
			OnFile:     cfg.OnFile,
		})
		if ctx.Err() != nil {
			return
		}
		for _, f := range findings {
			if f.Status == Unverifiable {
				log.Warn("stored file cannot be verified", "key", f.Key, "reason", f.Reason)
				continue
			}
			log.Error("stored file is bad", "key", f.Key, "status", f.Status, "reason", f.Reason, "action", f.Action)
		}
		if err != nil {
			log.Error("scrub pass failed", "err", err)
		} else {
			log.Info("scrub pass done", "files", sum.Files, "corrupt", sum.Corrupt, "missing", sum.Missing,
				"unverifiable", sum.Unverifiable, "repaired", sum.Repaired, "duration", sum.Duration)
		}
		wait := cfg.Interval - time.Since(start)
		if wait < 0 {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
