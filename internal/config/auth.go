package config

// Auth is the "auth" section. (Stub: its keys arrive with the issue that owns them.)
type Auth struct{}

// auth checks the "auth" section.
func (v *validator) auth() {}
