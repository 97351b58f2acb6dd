package config

// Audit is the "audit" section. (Stub: its keys arrive with the issue that owns them.)
type Audit struct{}

// audit checks the "audit" section.
func (v *validator) audit() {}
