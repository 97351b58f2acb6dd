package config

import (
	"path/filepath"

	"github.com/modgate/modgate/internal/auth"
)

// TLS is the "tls" section. With cert_file and key_file set modgate serves
// HTTPS (the go command sends credentials only over HTTPS); without them it
// serves plain HTTP, which is the default and fine on 127.0.0.1.
type TLS struct {
	// CertFile is the PEM certificate (with its chain). It and KeyFile
	// are re-read when they change, so renewals need no restart.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile, optional, holds the PEM certificates of the CAs that
	// issue client certificates. Clients may then authenticate with a
	// certificate (see auth.mtls); clients without one still connect.
	ClientCAFile string `yaml:"client_ca_file"`
	// MinVersion is the oldest TLS version accepted: "1.2" (the default)
	// or "1.3".
	MinVersion string `yaml:"min_version"`
}

// Enabled reports whether HTTPS is configured.
func (t TLS) Enabled() bool { return t.CertFile != "" }

// Options converts the validated "tls" section into package auth's TLS
// options.
func (t TLS) Options() (auth.TLSOptions, error) {
	v, err := auth.ParseTLSVersion(t.MinVersion)
	if err != nil {
		return auth.TLSOptions{}, err
	}
	return auth.TLSOptions{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile, MinVersion: v}, nil
}

// tls checks the "tls" section.
func (v *validator) tls() {
	t := v.c.TLS
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		v.add("tls.key_file", "", "required when tls.cert_file is set: the certificate's private key")
	case t.CertFile == "" && t.KeyFile != "":
		v.add("tls.cert_file", "", "required when tls.key_file is set: the certificate for the key")
	}
	if t.ClientCAFile != "" && t.CertFile == "" {
		v.add("tls.client_ca_file", "", "client certificates need TLS: set tls.cert_file and tls.key_file too")
	}
	for _, f := range []struct{ key, path string }{
		{"tls.cert_file", t.CertFile}, {"tls.key_file", t.KeyFile}, {"tls.client_ca_file", t.ClientCAFile},
	} {
		if f.path != "" && !filepath.IsAbs(f.path) {
			v.add(f.key, "", "%q is not an absolute path; write the full path", f.path)
		}
	}
	if _, err := auth.ParseTLSVersion(t.MinVersion); err != nil {
		v.add("tls.min_version", "", "%v", err)
	}
}
