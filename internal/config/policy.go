package config

// Policy is the "policy" section. (Stub: its keys arrive with the issue that owns them.)
type Policy struct{}

// policy checks the "policy" section.
func (v *validator) policy() {}
