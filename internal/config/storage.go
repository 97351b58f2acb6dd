package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// Storage says where module files are kept: the data directory (the
// default) or an S3-compatible object store shared by replicas.
type Storage struct {
	// Type is disk (module files under {data_dir}/modules) or s3.
	Type StorageType `yaml:"type"`

	// S3 configures the object store when type is s3.
	S3 StorageS3 `yaml:"s3"`
}

// StorageType names a storage back end.
type StorageType string

// The storage back ends.
const (
	StorageTypeDisk StorageType = "disk"
	StorageTypeS3   StorageType = "s3"
)

// ParseStorageType parses a storage type, ignoring case.
func ParseStorageType(s string) (StorageType, error) {
	t := StorageType(strings.ToLower(s))
	if t != StorageTypeDisk && t != StorageTypeS3 {
		return "", fmt.Errorf("%q is not a storage type (want disk or s3)", s)
	}
	return t, nil
}

// UnmarshalText parses a storage type (see ParseStorageType).
func (t *StorageType) UnmarshalText(b []byte) error {
	v, err := ParseStorageType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// StorageS3 is an S3-compatible object store. Credentials never appear in
// the file: they are read from the environment variables it names, or
// from a file.
type StorageS3 struct {
	// Endpoint is the server's URL (http://127.0.0.1:7070); empty means
	// the AWS endpoint of the region.
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	// Bucket is required when type is s3; it must exist.
	Bucket string `yaml:"bucket"`
	// Prefix is put in front of every key: "" or a path ending in "/".
	Prefix string `yaml:"prefix"`
	// PathStyle addresses the bucket in the path (most self-hosted
	// servers) rather than the host name.
	PathStyle bool `yaml:"path_style"`
	// AccessKeyEnv and SecretKeyEnv name the environment variables that
	// hold the credentials.
	AccessKeyEnv string `yaml:"access_key_env"`
	SecretKeyEnv string `yaml:"secret_key_env"`
	// CredentialsFile, when set, is read instead: the access key on the
	// first line, the secret key on the second.
	CredentialsFile string `yaml:"credentials_file"`
	// CacheDir holds the local copies of immutable files; default
	// {data_dir}/s3cache. Safe to wipe at any time.
	CacheDir string `yaml:"cache_dir"`
	// CacheMaxMB bounds the local cache; 0 turns it off (every read goes
	// to S3 and zero-copy sends are lost).
	CacheMaxMB int `yaml:"cache_max_mb"`
}

// defaultStorage is the storage section's defaults.
func defaultStorage() Storage {
	return Storage{
		Type: StorageTypeDisk,
		S3: StorageS3{
			Region:       "us-east-1",
			PathStyle:    true,
			AccessKeyEnv: "MODGATE_S3_ACCESS_KEY",
			SecretKeyEnv: "MODGATE_S3_SECRET_KEY",
			CacheMaxMB:   2048,
		},
	}
}

// S3CacheDir is storage.s3.cache_dir, or its default below the data
// directory.
func (c Config) S3CacheDir() string {
	if c.Storage.S3.CacheDir != "" || c.DataDir == "" {
		return c.Storage.S3.CacheDir
	}
	return filepath.Join(c.DataDir, "s3cache")
}

// storage checks the storage section. The s3 keys are checked only when
// type is s3.
func (v *validator) storage() {
	st := v.c.Storage
	if _, err := ParseStorageType(string(st.Type)); err != nil {
		v.add("storage.type", "", "%v", err)
		return
	}
	if st.Type != StorageTypeS3 {
		return
	}
	s := st.S3
	if s.Bucket == "" {
		v.add("storage.s3.bucket", "", `required when storage.type is "s3"`)
	}
	if s.Region == "" {
		v.add("storage.s3.region", "", `required when storage.type is "s3" (most self-hosted servers accept "us-east-1")`)
	}
	if s.Endpoint != "" {
		if err := checkHTTPURL(s.Endpoint); err != nil {
			v.add("storage.s3.endpoint", "", "%v", err)
		}
	}
	if p := s.Prefix; p != "" && (!strings.HasSuffix(p, "/") || strings.HasPrefix(p, "/") || strings.Contains(p, "//")) {
		v.add("storage.s3.prefix", "", `%q must be empty or a relative path ending in "/", like "modgate/"`, p)
	}
	if s.CredentialsFile == "" {
		if s.AccessKeyEnv == "" || s.SecretKeyEnv == "" {
			v.add("storage.s3.access_key_env", "", "set access_key_env and secret_key_env (names of environment variables), or credentials_file")
		}
	} else if !filepath.IsAbs(s.CredentialsFile) {
		v.add("storage.s3.credentials_file", "", "%q is not an absolute path; write the full path", s.CredentialsFile)
	}
	if s.CacheDir != "" && !filepath.IsAbs(s.CacheDir) {
		v.add("storage.s3.cache_dir", "", "%q is not an absolute path; write the full path", s.CacheDir)
	} else if d := v.c.DataDir; s.CacheDir != "" && d != "" {
		// The cache evicts files it finds there: it must not share a
		// directory with anything else modgate keeps.
		clean := filepath.Clean(s.CacheDir)
		modules := filepath.Join(d, "modules")
		if clean == filepath.Clean(d) || pathWithin(modules, clean) || pathWithin(clean, modules) {
			v.add("storage.s3.cache_dir", "", "%q overlaps the data directory's module store; use a directory of its own (default {data_dir}/s3cache)", s.CacheDir)
		}
	}
	if s.CacheMaxMB < 0 || s.CacheMaxMB > 1<<24 {
		v.add("storage.s3.cache_max_mb", "", "must be between 0 (off) and 16777216, got %d", s.CacheMaxMB)
	}
}

// checkHTTPURL reports whether s is an absolute http or https URL with a
// host and nothing after the path.
func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q not supported (want https or http)", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("%q must not carry credentials, a query or a fragment", s)
	}
	return nil
}
