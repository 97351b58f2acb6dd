package config

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// Audit is the "audit" section: the tamper-evident audit log of every
// request that served, refused or failed a module, and of every admin
// action (package audit). The signing key of its checkpoints is kept next
// to the directory ("<dir>.key", see audit.KeyPath) unless key_file names
// another place; the key itself is never part of the configuration.
type Audit struct {
	// Enabled writes the audit log. Default true.
	Enabled bool `yaml:"enabled"`

	// Dir is the directory of the log files and the checkpoints file. It
	// must be absolute. Empty (the default) means {data_dir}/audit; see
	// Config.AuditDir.
	Dir string `yaml:"dir"`

	// MaxSizeMB rotates a log file when it would grow beyond this many
	// megabytes, from 1 to 1048576. Default 100.
	MaxSizeMB int `yaml:"max_size_mb"`

	// MaxAge rotates a log file older than this at its next record.
	// "0s" rotates by size only. Default 24h.
	MaxAge Duration `yaml:"max_age"`

	// Retention deletes closed log files whose records are all older than
	// this, recording the deletion in the chain so that the log still
	// verifies. Files are deleted whole, so a record may be kept up to
	// retention plus max_age. "0s" (the default) keeps everything.
	Retention Duration `yaml:"retention"`

	// CheckpointInterval is how often the head of the chain is signed
	// and the checkpoint written (to the checkpoints file and the process
	// log), and retention applied. Records after the last checkpoint are
	// the ones a truncation could remove unnoticed. At least 1s.
	// Default 1m.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`

	// Buffer is how many records may wait for the disk, from 1 to
	// 1048576; beyond that a request waits a few milliseconds and its
	// record is dropped and counted. Default 1024.
	Buffer int `yaml:"buffer"`

	// FailClosed refuses requests (503) while the audit log cannot be
	// written, instead of serving them without a record. Default false.
	FailClosed bool `yaml:"fail_closed"`

	// SpoolMaxMB bounds, in megabytes, the local spool that keeps records
	// while the replicas' shared chain in PostgreSQL (state.postgres)
	// cannot be reached, from 1 to 1048576; when it is full, records are
	// dropped and counted. Unused without state.postgres. Default 256.
	SpoolMaxMB int `yaml:"spool_max_mb"`

	// Pseudonymize replaces client IPs and identities in the log with a
	// keyed hash ("p:" and 24 hex digits): one client keeps one pseudonym,
	// but only the key's holder can tell who it is. Default false.
	Pseudonymize bool `yaml:"pseudonymize"`

	// PseudonymKeyFile is the file holding the pseudonymisation key (hex),
	// created with a random key when missing. It must be absolute. Empty
	// means "<dir>.pseudonym-key" next to the log directory.
	PseudonymKeyFile string `yaml:"pseudonym_key_file"`

	// KeyFile is the checkpoints' signing key (created when missing, with
	// its public half in KeyFile+".pub"). It must be absolute. Empty means
	// "<dir>.key" next to the log directory. Keep it outside the data
	// directory so that whoever can rewrite the log cannot re-sign it.
	KeyFile string `yaml:"key_file"`

	// AnchorFile is a file every checkpoint is also appended to: an
	// outside copy for `modgate audit verify --checkpoints`. It must be
	// absolute and outside data_dir and the log directory (another mount,
	// ideally append-only). Empty means none.
	AnchorFile string `yaml:"anchor_file"`

	// AnchorSyslog sends every checkpoint to a syslog daemon as well:
	// udp://HOST:PORT, tcp://HOST:PORT or unix:///PATH (a datagram socket
	// such as /dev/log). Empty means none.
	AnchorSyslog string `yaml:"anchor_syslog"`
}

// AuditKeyFile returns the checkpoints' signing key file: audit.key_file,
// or "<dir>.key" next to the log directory.
func (c Config) AuditKeyFile() string {
	if c.Audit.KeyFile != "" {
		return c.Audit.KeyFile
	}
	return audit.KeyPath(c.AuditDir())
}

// AuditDir returns the audit log directory: audit.dir, or {data_dir}/audit
// when it is empty.
func (c Config) AuditDir() string {
	if c.Audit.Dir != "" {
		return c.Audit.Dir
	}
	return filepath.Join(c.DataDir, "audit")
}

// audit checks the "audit" section.
func (v *validator) audit() {
	a := v.c.Audit
	v.auditPath("audit.dir", a.Dir)
	if n := a.MaxSizeMB; n < 1 || n > 1<<20 {
		v.add("audit.max_size_mb", "", "must be between 1 and 1048576, got %d", n)
	}
	if a.MaxAge.Duration < 0 {
		v.add("audit.max_age", "", `must not be negative, got %q; write "0s" to rotate by size only`, a.MaxAge.String())
	}
	if a.Retention.Duration < 0 {
		v.add("audit.retention", "", `must not be negative, got %q; write "0s" to keep every record`, a.Retention.String())
	}
	if a.CheckpointInterval.Duration < time.Second {
		v.add("audit.checkpoint_interval", "", `must be at least "1s", got %q`, a.CheckpointInterval.String())
	}
	if n := a.Buffer; n < 1 || n > 1<<20 {
		v.add("audit.buffer", "", "must be between 1 and 1048576 records, got %d", n)
	}
	if a.Retention.Duration > 0 && v.c.PostgresEnabled() {
		v.add("audit.retention", "", "applies to the audit log's files, not to the replicas' shared chain in PostgreSQL (state.postgres); remove it and archive the table with the database's tools")
	}
	if n := a.SpoolMaxMB; n < 1 || n > 1<<20 {
		v.add("audit.spool_max_mb", "", "must be between 1 and 1048576, got %d", n)
	}
	v.auditPath("audit.pseudonym_key_file", a.PseudonymKeyFile)
	if a.PseudonymKeyFile != "" && !a.Pseudonymize {
		v.add("audit.pseudonym_key_file", "", "set, but audit.pseudonymize is false; set audit.pseudonymize: true or remove audit.pseudonym_key_file")
	}
	v.auditPath("audit.key_file", a.KeyFile)
	v.auditPath("audit.anchor_file", a.AnchorFile)
	if a.AnchorFile != "" && filepath.IsAbs(a.AnchorFile) {
		for _, inside := range []struct{ key, dir string }{{"data_dir", v.c.DataDir}, {"the audit log directory", v.c.AuditDir()}} {
			if inside.dir != "" && filepath.IsAbs(inside.dir) && pathWithin(inside.dir, a.AnchorFile) {
				v.add("audit.anchor_file", "", "%q is inside %s (%s): an outside copy must survive whoever can rewrite that directory; put it on another mount", a.AnchorFile, inside.key, inside.dir)
				break
			}
		}
	}
	if a.AnchorSyslog != "" {
		if _, _, err := audit.ParseSyslogAddress(a.AnchorSyslog); err != nil {
			v.add("audit.anchor_syslog", "", "%v", err)
		}
	}
}

// pathWithin reports whether path is dir or below it.
func pathWithin(dir, path string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// auditPath checks that a path setting of the audit section, if set, is
// absolute.
func (v *validator) auditPath(key, p string) {
	switch {
	case p == "":
	case strings.HasPrefix(p, "~"):
		v.add(key, "", "%q starts with ~, which is not expanded; write the full path", p)
	case !filepath.IsAbs(p):
		v.add(key, "", "%q is not an absolute path; write the full path", p)
	}
}
