package config

// Storage configures the module store. This file holds only the
// background scrub's key; the store's kind and its settings live beside
// it when they are added.
type Storage struct {
	// ScrubInterval, when positive, re-checks every stored .mod and .zip
	// against the checksum database or the ledger once per interval, at a
	// bounded rate, quarantining and fetching again what is corrupt (see
	// package integrity). Default 0: off.
	ScrubInterval Duration `yaml:"scrub_interval"`
}

// storage checks the storage section.
func (v *validator) storage(s Storage) {
	if s.ScrubInterval.Duration < 0 {
		v.add("storage.scrub_interval", "", "must not be negative (0 turns the scrub off), got %q", s.ScrubInterval.String())
	}
}
