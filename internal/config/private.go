package config

// Private is the "private" section. (Stub: its keys arrive with the issue that owns them.)
type Private struct{}

// private checks the "private" section.
func (v *validator) private() {}
