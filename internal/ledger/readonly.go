package ledger

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrReadOnly reports a check that would have recorded a new hash in a
// ledger opened with OpenReadOnly.
var ErrReadOnly = errors.New("the ledger is open read-only here, so a hash seen for the first time cannot be recorded (fetch it through the server)")

// OpenReadOnly loads the ledger in cfg.Dir without taking it over, for
// maintenance commands that run beside the server that owns it: the file
// is never written, a torn last line (an append in progress) is ignored,
// and a check that would record a new hash fails with ErrReadOnly.
// Comparisons with recorded hashes work as with Open. A missing file is
// an empty ledger.
func OpenReadOnly(cfg Config) (*Ledger, error) {
	if cfg.Dir == "" {
		return nil, errors.New("ledger: Dir is required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	l := &Ledger{
		patterns: strings.Join(cfg.Patterns, ","),
		log:      logger.With("component", "ledger"),
		onMoved:  cfg.OnMoved,
		now:      time.Now,
	}
	name := filepath.Join(cfg.Dir, FileName)
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		l.backend = &fileBackend{file: &file{name: name, readOnly: true, err: ErrReadOnly}, records: make(map[string]record)}
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	lf := &file{f: f, name: name, readOnly: true}
	records, err := lf.load(l.log)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.backend = &fileBackend{file: lf, records: records}
	return l, nil
}
