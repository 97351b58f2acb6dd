package config

import (
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// validConfig returns a resolved configuration that validates.
func validConfig(t *testing.T) Config {
	t.Helper()
	c, err := Load("", envOf(map[string]string{"HOME": "/home/gopher"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("valid baseline: Validate() = %v", err)
	}
	return c
}

// testVerifierKey returns a fresh verifier key for the database "sum.test".
func testVerifierKey(t *testing.T) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, "sum.test")
	if err != nil {
		t.Fatal(err)
	}
	return vkey
}

func TestValidate(t *testing.T) {
	vkey := testVerifierKey(t)
	tests := []struct {
		name   string
		modify func(c *Config)
		errs   [][]string
	}{
		{name: "baseline", modify: func(c *Config) {}},
		{
			name: "good values",
			modify: func(c *Config) {
				c.Listen = "[::1]:0"
				c.PublicURL = "https://modgate.corp.example/go"
				c.Upstream.GOPROXY = "https://a.example|http://b.example:8080/x,file:///srv/mods,corp.example/proxy,direct"
				c.Upstream.Retries = 10
				c.SumDB.GOSUMDB = vkey + " https://sum.test/base"
				c.SumDB.NoSumDB = []string{"corp.example", "*.internal.example/*"}
			},
		},
		{
			name: "direct proxy and CA",
			modify: func(c *Config) {
				c.Upstream.Direct = UpstreamDirect{Proxy: "http://u:pw@proxy.corp.example:3128", CAFile: "/etc/ca.pem"}
			},
		},
		{
			name: "direct proxy scheme, relative CA file",
			modify: func(c *Config) {
				c.Upstream.Direct = UpstreamDirect{Proxy: "socks5://u:s3cret@proxy.corp.example", CAFile: "ca.pem"}
			},
			errs: [][]string{
				{`upstream.direct.proxy: "socks5://u:xxxxx@proxy.corp.example": want an http or https URL with a host`},
				{`upstream.direct.ca_file: "ca.pem" is not an absolute path`},
			},
		},
		{name: "gosumdb off", modify: func(c *Config) { c.SumDB.GOSUMDB = "off" }},
		{
			name: "upstream limits and redirects",
			modify: func(c *Config) {
				c.Upstream.RedirectHosts = []string{"https://storage.example.com/bucket", "*.s3.example.com", "a*.example.com"}
				c.Upstream.MaxConcurrentFills = 5000
				c.Upstream.FillQueueTimeout = Duration{}
				c.Upstream.RequestBudget = Duration{-time.Second}
				c.Upstream.RefreshWait = Duration{}
			},
			errs: [][]string{
				{`upstream.redirect_hosts[0]: "https://storage.example.com/bucket" is not a host`},
				{`upstream.redirect_hosts[2]: "a*.example.com": a wildcard may only start the host`},
				{"upstream.max_concurrent_fills: must be between 1 and 4096, got 5000"},
				{"upstream.fill_queue_timeout: must be positive"},
				{"upstream.request_budget: must be positive"},
				{"upstream.refresh_wait: must be positive"},
			},
		},
		{name: "gosumdb bare name", modify: func(c *Config) { c.SumDB.GOSUMDB = "sum.test" }},
		{name: "goproxy off", modify: func(c *Config) { c.Upstream.GOPROXY = "off" }},
		{
			name:   "listen without port",
			modify: func(c *Config) { c.Listen = "localhost" },
			errs:   [][]string{{`listen: "localhost" is not host:port (missing port in address); write for example "127.0.0.1:3000"`}},
		},
		{
			name:   "listen port out of range",
			modify: func(c *Config) { c.Listen = ":70000" },
			errs:   [][]string{{`listen: port "70000" in ":70000" is not a number from 0 to 65535`}},
		},
		{
			name:   "drain period negative",
			modify: func(c *Config) { c.Server.DrainPeriod = Duration{-time.Second} },
			errs:   [][]string{{`server.drain_period: must not be negative, got -1s`}},
		},
		{name: "drain period zero", modify: func(c *Config) { c.Server.DrainPeriod = Duration{} }},
		{name: "replica name", modify: func(c *Config) { c.Server.ReplicaName = "db-1.corp:8080" }},
		{
			name:   "replica name with a space",
			modify: func(c *Config) { c.Server.ReplicaName = "a b" },
			errs:   [][]string{{`server.replica_name: "a b": want 1 to 64 letters, digits and .-_:@`}},
		},
		{
			name: "audit retention with the shared chain",
			modify: func(c *Config) {
				c.Audit.Retention = Duration{time.Hour}
				c.State.Postgres.DSNEnv = "PG_DSN"
			},
			errs: [][]string{{`audit.retention: applies to the audit log's files, not to the replicas' shared chain in PostgreSQL`}},
		},
		{
			name:   "audit spool of zero",
			modify: func(c *Config) { c.Audit.SpoolMaxMB = 0 },
			errs:   [][]string{{`audit.spool_max_mb: must be between 1 and 1048576, got 0`}},
		},
		{name: "metrics listen", modify: func(c *Config) { c.Metrics.Listen = "127.0.0.1:9100" }},
		{
			name:   "metrics listen without port",
			modify: func(c *Config) { c.Metrics.Listen = "localhost" },
			errs:   [][]string{{`metrics.listen: "localhost" is not host:port`}},
		},
		{
			name:   "metrics listen is listen",
			modify: func(c *Config) { c.Listen = "127.0.0.1:3000"; c.Metrics.Listen = "127.0.0.1:3000" },
			errs:   [][]string{{`metrics.listen: "127.0.0.1:3000" is also listen`}},
		},
		{
			name:   "metrics access",
			modify: func(c *Config) { c.Metrics.Access = "public" },
			errs:   [][]string{{`metrics.access: "public" is not a metrics access mode (want auto, scope or open)`}},
		},
		{
			name:   "public_url scheme",
			modify: func(c *Config) { c.PublicURL = "ftp://m.example" },
			errs:   [][]string{{`public_url: scheme "ftp" not supported (want https or http)`}},
		},
		{
			name:   "public_url without host",
			modify: func(c *Config) { c.PublicURL = "modgate.example" },
			errs:   [][]string{{`public_url: scheme "" not supported`}},
		},
		{
			name:   "data_dir relative",
			modify: func(c *Config) { c.DataDir = "data" },
			errs:   [][]string{{`data_dir: "data" is not an absolute path`}},
		},
		{
			name:   "data_dir with tilde",
			modify: func(c *Config) { c.DataDir = "~/modgate" },
			errs:   [][]string{{`data_dir: "~/modgate" starts with ~, which is not expanded`}},
		},
		{
			name:   "data_dir empty",
			modify: func(c *Config) { c.DataDir = "" },
			errs:   [][]string{{"data_dir: no directory; set data_dir or MODGATE_DATA_DIR"}},
		},
		{
			name:   "goproxy empty",
			modify: func(c *Config) { c.Upstream.GOPROXY = "" },
			errs:   [][]string{{"upstream.goproxy: empty, and go env GOPROXY gave nothing either"}},
		},
		{
			name:   "goproxy bad scheme",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://ok.example,htps://typo.example|direct" },
			errs: [][]string{
				{`upstream.goproxy: GOPROXY entry "htps://typo.example": scheme "htps" not supported (want https, http or file)`, "(from go env GOPROXY)"},
			},
		},
		{
			name:   "goproxy unknown keyword",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://ok.example,nonsense" },
			errs:   [][]string{{`upstream.goproxy: GOPROXY entry "nonsense": unknown keyword (want direct, off or a URL)`}},
		},
		{
			name:   "goproxy local path",
			modify: func(c *Config) { c.Upstream.GOPROXY = "/srv/mods" },
			errs:   [][]string{{`upstream.goproxy: GOPROXY entry "/srv/mods": missing scheme (want https://, http:// or file://)`}},
		},
		{
			name:   "goproxy without host",
			modify: func(c *Config) { c.Upstream.GOPROXY = "https://" },
			errs:   [][]string{{`upstream.goproxy: GOPROXY entry "https:": missing host`}},
		},
		{
			name:   "goproxy only separators",
			modify: func(c *Config) { c.Upstream.GOPROXY = " ,| " },
			errs:   [][]string{{`upstream.goproxy: GOPROXY list " ,| " has no entries`}},
		},
		{
			name:   "goproxy password redacted",
			modify: func(c *Config) { c.Upstream.GOPROXY = "htps://u:hunter2@proxy.example" },
			errs:   [][]string{{`upstream.goproxy: GOPROXY entry "htps://u:xxxxx@proxy.example": scheme "htps"`}},
		},
		{
			// Leaving modgate out of its own upstreams is upstream.Build's job.
			name: "goproxy naming modgate itself is valid",
			modify: func(c *Config) {
				c.PublicURL = "https://modgate.corp.example"
				c.Upstream.GOPROXY = "https://MODGATE.corp.example/,http://localhost:3000,https://other.example"
			},
		},
		{
			name:   "patterns",
			modify: func(c *Config) { c.Upstream.NoProxy = []string{"ok.example", "", "a b", "x[", "a,b"} },
			errs: [][]string{
				{"upstream.noproxy[1]: empty pattern"},
				{`upstream.noproxy[2]: pattern "a b" contains a space`},
				{`upstream.noproxy[3]: pattern "x[" is not a valid glob`},
				{`upstream.noproxy[4]: pattern "a,b" contains a comma`},
			},
		},
		{
			name:   "gosumdb unknown key syntax",
			modify: func(c *Config) { c.SumDB.GOSUMDB = "sum.test+1234+AAAA" },
			errs:   [][]string{{`sumdb.gosumdb: "sum.test+1234+AAAA" is not a valid verifier key`}},
		},
		{
			name:   "gosumdb URL scheme",
			modify: func(c *Config) { c.SumDB.GOSUMDB = vkey + " ftp://sum.test" },
			errs:   [][]string{{`sumdb.gosumdb: URL "ftp://sum.test": scheme "ftp" not supported (want https or http)`}},
		},
		{
			name:   "gosumdb too many fields",
			modify: func(c *Config) { c.SumDB.GOSUMDB = "sum.test https://a https://b" },
			errs:   [][]string{{"sumdb.gosumdb:", "has 3 fields"}},
		},
		{
			name:   "gosumdb name not host/path",
			modify: func(c *Config) { c.SumDB.GOSUMDB = "sum.test/" },
			errs:   [][]string{{`sumdb.gosumdb: database name "sum.test/" is not host[/path]`}},
		},
		{
			name: "several problems at once",
			modify: func(c *Config) {
				c.Log.Level = "loud"
				c.Log.Format = "xml"
				c.Upstream.DialTimeout = Duration{-time.Second}
				c.Upstream.Retries = 11
				c.Cache.ListTTL = Duration{-time.Second}
				c.Cache.NegativeTTL = Duration{}
				c.Server.ShutdownTimeout = Duration{}
				c.SumDB.GOSUMDB = ""
			},
			errs: [][]string{
				{`log.level: "loud" is not a log level (want debug, info, warn or error)`},
				{`log.format: "xml" is not a log format (want text or json)`},
				{`upstream.dial_timeout: must be positive, got "-1s"`},
				{"upstream.retries: must be between 0 and 10, got 11"},
				{`cache.list_ttl: must be positive, got "-1s"`},
				{`cache.negative_ttl: must be positive, got "0s"`},
				{`server.shutdown_timeout: must be positive, got "0s"`},
				{"sumdb.gosumdb: empty, and go env GOSUMDB gave nothing either", `or "off"`},
			},
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

// TestValidateNamesWhere checks that a problem points at where the bad
// value was written: the file and line, the variable, or the flag.
func TestValidateNamesWhere(t *testing.T) {
	path := writeConfig(t, "listen: nope\ncache:\n  list_ttl: -1s\n")
	c, err := Load(path, envOf(map[string]string{"HOME": "/home/gopher", "MODGATE_PUBLIC_URL": "gopher://x"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Set("upstream.retries", "12", "flag --retries"); err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	checkProblems(t, "Validate()", c.Validate(), [][]string{
		{path + `:1: listen: "nope" is not host:port`},
		{path + `:3: cache.list_ttl: must be positive, got "-1s"`},
		{`public_url: scheme "gopher" not supported (want https or http) (from env MODGATE_PUBLIC_URL)`},
		{"upstream.retries: must be between 0 and 10, got 12 (from flag --retries)"},
	})

	// An empty value in the file is filled from go env: a problem with it
	// points at go env, not at the file.
	path = writeConfig(t, "upstream:\n  goproxy: \"\"\n")
	c, err = Load(path, envOf(map[string]string{"HOME": "/home/gopher"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Resolve(GoEnv{GOPROXY: "htps://proxy.test", GOSUMDB: "off"}); err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	checkProblems(t, "Validate()", err, [][]string{
		{`upstream.goproxy: GOPROXY entry "htps://proxy.test": scheme "htps" not supported (want https, http or file) (from go env GOPROXY)`},
	})
	if strings.Contains(err.Error(), path) {
		t.Errorf("Validate() = %v, want no file position for a value from go env", err)
	}
}

// TestValidateReportsLoadProblemsToo checks that a file with a value of the
// wrong type and an invalid value reports both at once: Load's problems
// come back from Validate with its own, each key once.
func TestValidateReportsLoadProblemsToo(t *testing.T) {
	path := writeConfig(t, "upstream:\n  retries: many\n  goproxy: htps://x\ncache:\n  list_ttl: -1s\n")
	c, err := Load(path, envOf(map[string]string{"HOME": "/home/gopher"}))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "upstream.retries") {
		t.Fatalf("Load = %v, want the upstream.retries problem", err)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatal(err)
	}
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate = nil, want every problem")
	}
	msg := err.Error()
	for _, want := range []string{path + ":2: upstream.retries: ", path + ":3: upstream.goproxy: ", path + ":5: cache.list_ttl: "} {
		if strings.Count(msg, want) != 1 {
			t.Errorf("Validate reports %q %d times, want once:\n%s", want, strings.Count(msg, want), msg)
		}
	}
}
