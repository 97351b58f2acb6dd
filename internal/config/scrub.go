package config

// scrub checks the storage section's scrub key (the rest: storage.go).
func (v *validator) scrub(s Storage) {
	if s.ScrubInterval.Duration < 0 {
		v.add("storage.scrub_interval", "", "must not be negative (0 turns the scrub off), got %q", s.ScrubInterval.String())
	}
}
