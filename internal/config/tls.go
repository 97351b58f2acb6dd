package config

// TLS is the "tls" section. (Stub: its keys arrive with the issue that owns them.)
type TLS struct{}

// tls checks the "tls" section.
func (v *validator) tls() {}
