package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// TLSOptions configures ServerTLS.
type TLSOptions struct {
	// CertFile and KeyFile are PEM files with the server's certificate
	// (chain) and private key. Both are required.
	CertFile, KeyFile string
	// ClientCAFile, if set, is a PEM file of CA certificates that sign
	// client certificates. Client certificates are then verified when
	// offered, but not required, so clients with tokens still connect.
	// It is read once, at ServerTLS.
	ClientCAFile string
	// MinVersion is tls.VersionTLS12 (the default, for 0) or
	// tls.VersionTLS13.
	MinVersion uint16
	// Logger receives failed reloads; nil discards them.
	Logger *slog.Logger
}

// ParseTLSVersion parses "1.2" or "1.3" (empty means "1.2").
func ParseTLSVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("TLS version %q not supported (want \"1.2\" or \"1.3\")", s)
}

// ServerTLS returns the server's TLS configuration. The certificate and key
// are loaded now (an error if they cannot be) and again whenever either
// file changes (compared by a stat on each handshake), so a renewed
// certificate is served without a restart. A reload that fails (for
// example between writing the new certificate and the new key) keeps the
// previous certificate and is retried when the files change again.
func ServerTLS(opt TLSOptions) (*tls.Config, error) {
	if opt.CertFile == "" || opt.KeyFile == "" {
		return nil, errors.New("tls: a certificate file and a key file are both required")
	}
	minVersion := opt.MinVersion
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	if minVersion != tls.VersionTLS12 && minVersion != tls.VersionTLS13 {
		return nil, fmt.Errorf("tls: minimum version %#x not supported", minVersion)
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cr := &certReloader{certFile: opt.CertFile, keyFile: opt.KeyFile, log: log}
	if err := cr.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		MinVersion:     minVersion,
		GetCertificate: cr.getCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if opt.ClientCAFile != "" {
		pem, err := os.ReadFile(opt.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: reading client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: client CA %s holds no PEM certificate", opt.ClientCAFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// A certReloader serves a certificate pair, reloading it when the files
// change.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu        sync.Mutex
	cert      *tls.Certificate
	certStamp stamp // of the files the last load attempt saw
	keyStamp  stamp
}

func (c *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ks := statStamp(c.certFile), statStamp(c.keyFile)
	if cs != c.certStamp || ks != c.keyStamp {
		c.certStamp, c.keyStamp = cs, ks
		if err := c.loadLocked(); err != nil {
			c.log.Error("reloading the TLS certificate failed; serving the previous one", "err", err)
		} else {
			c.log.Info("reloaded the TLS certificate", "file", c.certFile)
		}
	}
	return c.cert, nil
}

// load loads the pair for the first time.
func (c *certReloader) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.certStamp, c.keyStamp = statStamp(c.certFile), statStamp(c.keyFile)
	return c.loadLocked()
}

func (c *certReloader) loadLocked() error {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: loading %s and %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert = &cert
	return nil
}

// statStamp returns the stamp of the file at path, zero if it cannot be
// stat'ed (the load then reports why).
func statStamp(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stampOf(fi)
}
