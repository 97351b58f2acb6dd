package config

import "path/filepath"

// DefaultMaxConcurrentGit is what private.max_concurrent_git 0 means; it
// equals git.DefaultMaxConcurrent (a test in package git keeps them equal).
const DefaultMaxConcurrentGit = 4

// Effective returns a copy of c with the settings whose empty or zero
// value stands for a derived default filled in with that default, as the
// server applies it: audit.dir ({data_dir}/audit), private.git_dir
// ({data_dir}/git), private.max_concurrent_git (DefaultMaxConcurrentGit),
// audit.pseudonym_key_file ("<audit dir>.pseudonym-key", when
// pseudonymize is on) and policy.vulndb.dir ({data_dir}/vulndb, when
// policy.vulndb.url is set). Call it after Resolve, which fills data_dir.
// Their sources stay as they were ("default" for an unset key). It is what
// YAML prints, so that --print-config shows the values in effect.
func (c Config) Effective() Config {
	e := c.Clone()
	if c.DataDir == "" {
		return e
	}
	if e.Audit.Dir == "" {
		e.Audit.Dir = c.AuditDir()
	}
	if e.Audit.Pseudonymize && e.Audit.PseudonymKeyFile == "" {
		// the name audit.PseudonymKeyPath gives it; package audit
		// cannot be imported here
		e.Audit.PseudonymKeyFile = filepath.Clean(e.Audit.Dir) + ".pseudonym-key"
	}
	e.Storage.S3.CacheDir = c.S3CacheDir()
	if e.Private.GitDir == "" {
		e.Private.GitDir = filepath.Join(c.DataDir, "git")
	}
	if e.Private.MaxConcurrentGit == 0 {
		e.Private.MaxConcurrentGit = DefaultMaxConcurrentGit
	}
	if e.Policy.VulnDB.URL != "" && e.Policy.VulnDB.Dir == "" {
		e.Policy.VulnDB.Dir = filepath.Join(c.DataDir, "vulndb")
	}
	return e
}
