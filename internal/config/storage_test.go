package config

import (
	"strings"
	"testing"
)

func TestValidateStorage(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		errs   [][]string
	}{
		{name: "disk by default", modify: func(c *Config) {}},
		{
			name: "disk ignores the s3 keys",
			modify: func(c *Config) {
				c.Storage.S3.Prefix = "/bad"
				c.Storage.S3.CacheMaxMB = -1
			},
		},
		{
			name: "s3",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Endpoint = "http://127.0.0.1:7070"
				c.Storage.S3.Bucket = "modules"
				c.Storage.S3.Prefix = "modgate/a/"
			},
		},
		{
			name: "s3 with a credentials file and AWS's endpoint",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Bucket = "modules"
				c.Storage.S3.CredentialsFile = "/etc/modgate/s3"
				c.Storage.S3.AccessKeyEnv = ""
			},
		},
		{
			name: "every s3 problem at once",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Endpoint = "ftp://host"
				c.Storage.S3.Region = ""
				c.Storage.S3.Prefix = "/abs"
				c.Storage.S3.AccessKeyEnv = ""
				c.Storage.S3.CacheDir = "cache"
				c.Storage.S3.CacheMaxMB = -5
			},
			errs: [][]string{
				{`storage.s3.bucket: required when storage.type is "s3"`},
				{`storage.s3.region: required`},
				{`storage.s3.endpoint: scheme "ftp" not supported`},
				{`storage.s3.prefix: "/abs" must be empty or a relative path ending in "/"`},
				{`storage.s3.access_key_env: set access_key_env and secret_key_env`},
				{`storage.s3.cache_dir: "cache" is not an absolute path`},
				{`storage.s3.cache_max_mb: must be between 0 (off) and 16777216, got -5`},
			},
		},
		{
			name: "endpoint with credentials",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Bucket = "b"
				c.Storage.S3.Endpoint = "http://key:secret@127.0.0.1:7070"
				c.Storage.S3.CredentialsFile = "relative"
			},
			errs: [][]string{
				{`storage.s3.endpoint:`, "must not carry credentials"},
				{`storage.s3.credentials_file: "relative" is not an absolute path`},
			},
		},
		{
			name: "cache in the module store",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Bucket = "b"
				c.Storage.S3.CacheDir = c.DataDir + "/modules/cache"
			},
			errs: [][]string{{`storage.s3.cache_dir:`, "overlaps the data directory's module store"}},
		},
		{
			name: "cache is the data directory",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Bucket = "b"
				c.Storage.S3.CacheDir = c.DataDir + "/"
			},
			errs: [][]string{{`storage.s3.cache_dir:`, "overlaps"}},
		},
		{
			name: "cache beside the module store",
			modify: func(c *Config) {
				c.Storage.Type = StorageTypeS3
				c.Storage.S3.Bucket = "b"
				c.Storage.S3.CacheDir = c.DataDir + "/modules-cache"
			},
		},
		{
			name:   "unknown type",
			modify: func(c *Config) { c.Storage.Type = "nfs" },
			errs:   [][]string{{`storage.type: "nfs" is not a storage type (want disk or s3)`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig(t)
			tt.modify(&c)
			checkProblems(t, "Validate()", c.Validate(), tt.errs)
		})
	}
}

func TestStorageFromFile(t *testing.T) {
	path := writeConfig(t, "data_dir: /srv/modgate\nstorage:\n  type: S3\n  s3:\n    bucket: mods\n    endpoint: http://127.0.0.1:7070\n")
	c, err := Load(path, envOf(map[string]string{"HOME": "/home/gopher"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Type != StorageTypeS3 || c.Storage.S3.Bucket != "mods" || !c.Storage.S3.PathStyle || c.Storage.S3.CacheMaxMB != 2048 {
		t.Errorf("storage = %+v, want type s3, bucket mods and the defaults", c.Storage)
	}
	if got := c.S3CacheDir(); got != "/srv/modgate/s3cache" {
		t.Errorf("S3CacheDir() = %q, want /srv/modgate/s3cache", got)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"type: s3", "cache_dir: /srv/modgate/s3cache", "access_key_env: MODGATE_S3_ACCESS_KEY"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config output lacks %q:\n%s", want, out)
		}
	}
	if _, err := Load(writeConfig(t, "storage:\n  s3:\n    secret_key: x\n"), envOf(nil)); err == nil || !strings.Contains(err.Error(), "storage.s3.secret_key: unknown key") {
		t.Errorf("a secret in the file = %v, want an unknown key error", err)
	}
}
