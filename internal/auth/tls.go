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
	// Like the certificate, it is read again when it changes.
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
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
		ca := &caReloader{file: opt.ClientCAFile, base: cfg.Clone(), log: log}
		if err := ca.load(); err != nil {
			return nil, err
		}
		cfg.GetConfigForClient = ca.configForClient
	}
	return cfg, nil
}

// A caReloader keeps the configuration that verifies client certificates
// in step with the client CA file: each handshake stats the file, and a
// change builds a new configuration (the base with the new pool). A file
// that cannot be read or holds no certificate keeps the previous pool
// (logged), so a half-written bundle never locks every client out.
type caReloader struct {
	file string
	base *tls.Config // the server configuration without ClientCAs
	log  *slog.Logger

	mu    sync.Mutex
	cfg   *tls.Config // base with the current pool
	stamp stamp       // of the file the last load attempt saw
}

func (c *caReloader) configForClient(*tls.ClientHelloInfo) (*tls.Config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := statStamp(c.file); st != c.stamp {
		c.stamp = st
		if err := c.loadLocked(); err != nil {
			c.log.Error("reloading the client CA failed; verifying with the previous one", "err", err)
		} else {
			c.log.Info("reloaded the client CA", "file", c.file)
		}
	}
	return c.cfg, nil
}

// load reads the file for the first time.
func (c *caReloader) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stamp = statStamp(c.file)
	return c.loadLocked()
}

func (c *caReloader) loadLocked() error {
	pem, err := os.ReadFile(c.file)
	if err != nil {
		return fmt.Errorf("tls: reading client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("tls: client CA %s holds no PEM certificate", c.file)
	}
	cfg := c.base.Clone()
	cfg.ClientCAs = pool
	c.cfg = cfg
	return nil
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
