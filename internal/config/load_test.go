package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// envOf returns an env function backed by m.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// writeConfig writes content to a fresh config file and returns its path.
func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// problems flattens an errors.Join of problems into their messages.
func problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, problems(e)...)
		}
		return out
	}
	return []string{err.Error()}
}

// checkProblems checks that err holds exactly one problem per want entry,
// each containing the substrings of its entry (in any order of problems),
// and that every problem matches ErrInvalid.
func checkProblems(t *testing.T, call string, err error, want [][]string) {
	t.Helper()
	got := problems(err)
	if len(got) != len(want) {
		t.Fatalf("%s: got %d problems, want %d:\n%s", call, len(got), len(want), strings.Join(got, "\n"))
	}
	if err != nil && !errors.Is(err, ErrInvalid) {
		t.Errorf("%s: errors.Is(err, ErrInvalid) = false for %v", call, err)
	}
	used := make([]bool, len(got))
	for _, subs := range want {
		found := false
		for i, msg := range got {
			if used[i] {
				continue
			}
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(msg, s)
			}
			if ok {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("%s: no problem contains all of %q; got:\n%s", call, subs, strings.Join(got, "\n"))
		}
	}
}

// ignoreUnexported also ignores File, which only records where Load read
// the configuration from.
var ignoreUnexported = cmp.Options{cmpopts.IgnoreUnexported(Config{}), cmpopts.IgnoreFields(Config{}, "File")}

func TestLoadNoFile(t *testing.T) {
	got, err := Load("", envOf(nil))
	if err != nil {
		t.Fatalf("Load(\"\") = %v", err)
	}
	if diff := cmp.Diff(Default(), got, ignoreUnexported); diff != "" {
		t.Errorf("Load(\"\") differs from Default() (-want +got):\n%s", diff)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := Load(path, envOf(nil))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(%q) = %v, want an error matching fs.ErrNotExist", path, err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%q) = %v, want the path in the message", path, err)
	}
}

func TestLoadFile(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    func(c *Config) // applied to Default() for the expected values
		sources map[string]string
		errs    [][]string // one entry per expected problem: substrings of its message
	}{
		{
			name: "empty file",
			yaml: "",
			want: func(c *Config) {},
		},
		{
			name: "comments only",
			yaml: "# nothing here\n",
			want: func(c *Config) {},
		},
		{
			name: "every kind of value",
			yaml: `listen: ":8080"
public_url: https://modgate.corp.example
data_dir: /srv/modgate
log:
  level: debug
  format: json
upstream:
  goproxy: https://proxy.corp.example,direct
  noproxy: [corp.example, "*.internal.example"]
  dial_timeout: 5s
  response_timeout: 1m
  idle_timeout: 2m30s
  retries: 0
  prefetch_workers: 3
  prefetch_depth: 2
  zip_ahead_workers: 0
  direct:
    proxy: http://proxy.corp.example:3128
    ca_file: /etc/modgate/egress-ca.pem
  redirect_hosts: [storage.example.com, "*.s3.example.com", "blobs.example.com:9000"]
  max_concurrent_fills: 16
  fill_queue_timeout: 5s
  request_budget: 15s
  refresh_wait: 500ms
sumdb:
  gosumdb: "off"
  nosumdb: [corp.example]
cache:
  list_ttl: 5m
  negative_ttl: 10s
  sumdb_latest_ttl: 1h
  memory_mb: 8
storage:
  scrub_interval: 24h
server:
  shutdown_timeout: 1m
  read_header_timeout: 3s
  drain_period: 0s
  replica_name: host-1
metrics:
  listen: 127.0.0.1:9100
  access: Scope
`,
			want: func(c *Config) {
				c.Listen = ":8080"
				c.PublicURL = "https://modgate.corp.example"
				c.DataDir = "/srv/modgate"
				c.Log = Log{Level: LogLevelDebug, Format: LogFormatJSON}
				c.Upstream = Upstream{
					GOPROXY:         "https://proxy.corp.example,direct",
					NoProxy:         []string{"corp.example", "*.internal.example"},
					DialTimeout:     Duration{5 * time.Second},
					ResponseTimeout: Duration{time.Minute},
					IdleTimeout:     Duration{150 * time.Second},
					Retries:         0,
					PrefetchWorkers: 3,
					PrefetchDepth:   2,
					ZipAheadWorkers: 0,
					Direct:          UpstreamDirect{Proxy: "http://proxy.corp.example:3128", CAFile: "/etc/modgate/egress-ca.pem"},
					RedirectHosts:   []string{"storage.example.com", "*.s3.example.com", "blobs.example.com:9000"},

					MaxConcurrentFills: 16,
					FillQueueTimeout:   Duration{5 * time.Second},
					RequestBudget:      Duration{15 * time.Second},
					RefreshWait:        Duration{500 * time.Millisecond},
				}
				c.SumDB = SumDB{GOSUMDB: "off", NoSumDB: []string{"corp.example"}}
				c.Cache = Cache{ListTTL: Duration{5 * time.Minute}, NegativeTTL: Duration{10 * time.Second}, SumDBLatestTTL: Duration{time.Hour}, MemoryMB: 8}
				c.Storage.ScrubInterval = Duration{24 * time.Hour}
				c.Server = Server{ShutdownTimeout: Duration{time.Minute}, ReadHeaderTimeout: Duration{3 * time.Second}, ReplicaName: "host-1"}
				c.Metrics = Metrics{Listen: "127.0.0.1:9100", Access: MetricsAccessScope}
				// The sections of later issues have tests of their own.
				for _, k := range Keys() {
					if section, _, _ := strings.Cut(k, "."); !slices.Contains([]string{"tls", "private", "policy", "auth", "audit", "storage", "state"}, section) {
						c.Sources[k] = SourceFile
					}
				}
				c.Sources["storage.scrub_interval"] = SourceFile
			},
		},
		{
			name: "partial file keeps other defaults",
			yaml: "upstream:\n  retries: 5\n",
			want: func(c *Config) {
				c.Upstream.Retries = 5
				c.Sources["upstream.retries"] = SourceFile
			},
		},
		{
			name: "choices ignore case",
			yaml: "log:\n  level: DEBUG\n  format: Json\n",
			want: func(c *Config) {
				c.Log = Log{Level: LogLevelDebug, Format: LogFormatJSON}
				c.Sources["log.level"], c.Sources["log.format"] = SourceFile, SourceFile
			},
		},
		{
			name: "bad choices",
			yaml: "log:\n  level: loud\n  format: 1\n",
			errs: [][]string{
				{`modgate.yaml:2: log.level: "loud" is not a log level (want debug, info, warn or error)`},
				{`modgate.yaml:3: log.format: "1" is not a log format (want text or json)`},
			},
		},
		{
			name: "null values keep defaults",
			yaml: "listen:\nlog: ~\nupstream:\n  dial_timeout: null\n  noproxy:\n",
			want: func(c *Config) {},
		},
		{
			name: "anchors and aliases",
			yaml: "cache:\n  list_ttl: &ttl 2m\n  negative_ttl: *ttl\n",
			want: func(c *Config) {
				c.Cache.ListTTL = Duration{2 * time.Minute}
				c.Cache.NegativeTTL = Duration{2 * time.Minute}
				c.Sources["cache.list_ttl"] = SourceFile
				c.Sources["cache.negative_ttl"] = SourceFile
			},
		},
		{
			name: "unknown top-level key",
			yaml: "listen: :3000\nstore: /srv\n",
			errs: [][]string{{"modgate.yaml:2: store: unknown key", "known keys at the top level: listen, public_url"}},
		},
		{
			name: "unknown nested key names the full key and line",
			yaml: "upstream:\n  retries: 1\n  timeout: 5s\n",
			errs: [][]string{{"modgate.yaml:3: upstream.timeout: unknown key", "known keys in upstream: goproxy, noproxy, dial_timeout"}},
		},
		{
			name: "misspelt key gets a suggestion",
			yaml: "log:\n  Level: debug\nupstream:\n  dial-timeout: 5s\n",
			errs: [][]string{
				{"modgate.yaml:2: log.Level: unknown key", `did you mean "log.level"?`},
				{"modgate.yaml:4: upstream.dial-timeout: unknown key", `did you mean "upstream.dial_timeout"?`},
			},
		},
		{
			name: "wrong types, all reported",
			yaml: `listen: [a, b]
log:
  level: {x: 1}
upstream:
  noproxy: corp.example
  retries: many
  dial_timeout: 10
  idle_timeout: [1s]
cache: 5m
server:
  shutdown_timeout: 2.5
`,
			errs: [][]string{
				{"modgate.yaml:1: listen: want a string, got a list"},
				{"modgate.yaml:3: log.level: want a string, got a mapping"},
				{"modgate.yaml:5: upstream.noproxy: want a list", `got "corp.example"`},
				{"modgate.yaml:6: upstream.retries: want a whole number, got \"many\""},
				{"modgate.yaml:7: upstream.dial_timeout:", `"10" is not a duration`},
				{"modgate.yaml:8: upstream.idle_timeout: want a duration string", "got a list"},
				{"modgate.yaml:9: cache: want a mapping with keys list_ttl, negative_ttl, sumdb_latest_ttl", `got "5m"`},
				{"modgate.yaml:11: server.shutdown_timeout:", `"2.5" is not a duration`},
			},
		},
		{
			name: "fractional retries",
			yaml: "upstream:\n  retries: 2.5\n",
			errs: [][]string{{"modgate.yaml:2: upstream.retries: want a whole number, got \"2.5\""}},
		},
		{
			name: "list element of the wrong type",
			yaml: "sumdb:\n  nosumdb:\n    - corp.example\n    - [nested]\n",
			errs: [][]string{{"modgate.yaml:4: sumdb.nosumdb[1]: want a string, got a list"}},
		},
		{
			name: "duplicate key",
			yaml: "listen: :1\nlisten: :2\n",
			errs: [][]string{{"modgate.yaml:2: listen: set twice (first on line 1)"}},
		},
		{
			name: "merge key",
			yaml: "defaults: &d\n  retries: 1\nupstream:\n  <<: *d\n",
			errs: [][]string{
				{"modgate.yaml:1: defaults: unknown key"},
				{"modgate.yaml:4: upstream.<<: merge keys are not supported"},
			},
		},
		{
			name: "top level is not a mapping",
			yaml: "- listen\n",
			errs: [][]string{{"modgate.yaml:1:", "want a mapping of keys", "got a list"}},
		},
		{
			name: "second document",
			yaml: "listen: :1\n---\nlisten: :2\n",
			errs: [][]string{{"modgate.yaml:2: a second YAML document"}},
		},
		{
			name: "not YAML",
			yaml: "listen: [unclosed\n",
			errs: [][]string{{"modgate.yaml: yaml: line"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, tt.yaml)
			call := "Load(" + filepath.Base(path) + ")"
			got, err := Load(path, envOf(nil))
			if tt.errs != nil {
				checkProblems(t, call, err, tt.errs)
				return
			}
			if err != nil {
				t.Fatalf("%s = %v", call, err)
			}
			want := Default()
			tt.want(&want)
			if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", call, diff)
			}
		})
	}
}

func TestLoadEnv(t *testing.T) {
	file := "listen: :1\nlog:\n  level: warn\nupstream:\n  retries: 4\n"
	tests := []struct {
		name string
		env  map[string]string
		want func(c *Config)
		errs [][]string
	}{
		{
			name: "no variables",
			env:  nil,
			want: func(c *Config) {},
		},
		{
			name: "every variable overrides the file",
			env: map[string]string{
				"MODGATE_LISTEN":     ":9",
				"MODGATE_PUBLIC_URL": "https://m.example",
				"MODGATE_DATA_DIR":   "/data",
				"MODGATE_LOG_LEVEL":  "ERROR",
				"MODGATE_LOG_FORMAT": "json",
				"MODGATE_GOPROXY":    "https://p.example",
				"MODGATE_GOSUMDB":    "off",
			},
			want: func(c *Config) {
				c.Listen, c.PublicURL, c.DataDir = ":9", "https://m.example", "/data"
				c.Log = Log{Level: LogLevelError, Format: LogFormatJSON}
				c.Upstream.GOPROXY, c.SumDB.GOSUMDB = "https://p.example", "off"
				for _, v := range EnvVars() {
					c.Sources[v.Key] = "env " + v.Name
				}
			},
		},
		{
			name: "empty variable is unset",
			env:  map[string]string{"MODGATE_LISTEN": ""},
			want: func(c *Config) {},
		},
		{
			name: "bad values name the variable",
			env:  map[string]string{"MODGATE_LOG_LEVEL": "loud", "MODGATE_LOG_FORMAT": "xml"},
			errs: [][]string{
				{"log.level:", `"loud" is not a log level (want debug, info, warn or error)`, "(from env MODGATE_LOG_LEVEL)"},
				{"log.format:", `"xml" is not a log format (want text or json)`, "(from env MODGATE_LOG_FORMAT)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeConfig(t, file)
			got, err := Load(path, envOf(tt.env))
			if tt.errs != nil {
				checkProblems(t, "Load", err, tt.errs)
				return
			}
			if err != nil {
				t.Fatalf("Load = %v", err)
			}
			want := Default()
			want.Listen, want.Log.Level, want.Upstream.Retries = ":1", LogLevelWarn, 4
			want.Sources["listen"], want.Sources["log.level"], want.Sources["upstream.retries"] = SourceFile, SourceFile, SourceFile
			tt.want(&want)
			if diff := cmp.Diff(want, got, ignoreUnexported); diff != "" {
				t.Errorf("Load with env %v mismatch (-want +got):\n%s", tt.env, diff)
			}
		})
	}
}

func TestSet(t *testing.T) {
	tests := []struct {
		name, key, value string
		check            func(c Config) bool
		err              string
	}{
		{name: "string", key: "listen", value: ":4000", check: func(c Config) bool { return c.Listen == ":4000" }},
		{name: "duration", key: "cache.list_ttl", value: "90s", check: func(c Config) bool { return c.Cache.ListTTL.Duration == 90*time.Second }},
		{name: "int", key: "upstream.retries", value: "7", check: func(c Config) bool { return c.Upstream.Retries == 7 }},
		{name: "list", key: "upstream.noproxy", value: " a.example, ,b.example/*,", check: func(c Config) bool {
			return cmp.Equal(c.Upstream.NoProxy, []string{"a.example", "b.example/*"})
		}},
		{name: "level", key: "log.level", value: "Debug", check: func(c Config) bool { return c.Log.Level == LogLevelDebug }},
		{name: "bad duration", key: "cache.list_ttl", value: "90", err: `cache.list_ttl: "90" is not a duration`},
		{name: "bad int", key: "upstream.retries", value: "two", err: `upstream.retries: "two" is not a whole number (from flag --x)`},
		{name: "unknown key", key: "upstream.nope", value: "1", err: "upstream.nope: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := c.Set(tt.key, tt.value, "flag --x")
			call := "Set(" + tt.key + ", " + tt.value + ")"
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s = %v, want an ErrInvalid containing %q", call, err, tt.err)
				}
				if diff := cmp.Diff(Default(), c, ignoreUnexported); diff != "" {
					t.Errorf("%s changed the config after failing (-want +got):\n%s", call, diff)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s = %v", call, err)
			}
			if !tt.check(c) {
				t.Errorf("%s did not set the value: %+v", call, c)
			}
			if got := c.Source(tt.key); got != "flag --x" {
				t.Errorf("after %s, Source(%q) = %q, want \"flag --x\"", call, tt.key, got)
			}
		})
	}
}

// TestSetEveryKey sets every key from the text form of its default, so a
// new field type without a case in Set fails here rather than in a user's
// hands.
func TestSetEveryKey(t *testing.T) {
	def := Default()
	rv := reflect.ValueOf(def)
	for _, f := range schema() {
		if isSectionList(f.typ) {
			c := Default()
			if err := c.Set(f.key, "x", "flag --x"); err == nil {
				t.Errorf("Set(%q) of a list of sections = nil, want an error", f.key)
			}
			continue
		}
		var text string
		switch v := rv.FieldByIndex(f.index).Interface().(type) {
		case []string:
			text = strings.Join(v, ",")
		case int:
			text = strconv.Itoa(v)
		default:
			text = fmt.Sprint(v)
		}
		c := Default()
		if err := c.Set(f.key, text, "flag --x"); err != nil {
			t.Errorf("Set(%q, %q) = %v", f.key, text, err)
			continue
		}
		got := reflect.ValueOf(c).FieldByIndex(f.index).Interface()
		if !cmp.Equal(rv.FieldByIndex(f.index).Interface(), got, cmpopts.EquateEmpty()) {
			t.Errorf("Set(%q, %q) set %v, want %v", f.key, text, got, rv.FieldByIndex(f.index).Interface())
		}
	}
}

func TestKeys(t *testing.T) {
	want := []string{
		"listen", "public_url", "data_dir", "log.level", "log.format",
		"upstream.goproxy", "upstream.noproxy", "upstream.dial_timeout", "upstream.response_timeout",
		"upstream.idle_timeout", "upstream.retries", "upstream.prefetch_workers", "upstream.prefetch_depth", "upstream.zip_ahead_workers", "upstream.redirect_hosts",
		"upstream.max_concurrent_fills", "upstream.fill_queue_timeout", "upstream.request_budget", "upstream.refresh_wait",
		"upstream.direct.proxy", "upstream.direct.ca_file",
		"sumdb.gosumdb", "sumdb.nosumdb",
		"cache.list_ttl", "cache.negative_ttl", "cache.sumdb_latest_ttl", "cache.memory_mb",
		"server.shutdown_timeout", "server.read_header_timeout", "server.drain_period", "server.replica_name",
		"metrics.listen", "metrics.access",
		"tls.cert_file", "tls.key_file", "tls.client_ca_file", "tls.min_version",
		"private.git_dir", "private.git_timeout", "private.max_concurrent_git",
		"private.webhook.secret_env", "private.webhook.secret_file", "private.sources",
		"policy.dry_run", "policy.rules", "policy.vulndb.url", "policy.vulndb.dir", "policy.vulndb.sync_interval",
		"policy.ages.publish_time_source", "policy.unmapped_pseudo_versions",
		"auth.anonymous.enabled", "auth.anonymous.scopes", "auth.tokens.enabled",
		"auth.trusted_header.name", "auth.trusted_header.proxies", "auth.trusted_header.default_scopes", "auth.trusted_header.identities",
		"auth.mtls.default_scopes", "auth.mtls.identities", "auth.client_ips.allow", "auth.client_ips.deny",
		"auth.failed_attempts.per_minute", "auth.groups",
		"auth.htpasswd.file", "auth.htpasswd.users", "auth.htpasswd.default_scopes",
		"auth.ldap.url", "auth.ldap.start_tls", "auth.ldap.ca_file", "auth.ldap.bind_dn", "auth.ldap.bind_password_env",
		"auth.ldap.bind_password_file", "auth.ldap.user_base", "auth.ldap.user_filter", "auth.ldap.user_dn_template",
		"auth.ldap.group_base", "auth.ldap.group_filter", "auth.ldap.group_attribute", "auth.ldap.default_scopes",
		"auth.ldap.cache_ttl", "auth.ldap.cache_size", "auth.ldap.timeout",
		"auth.oidc.issuers", "auth.oidc.skew", "auth.oidc.keys_refresh_interval", "auth.oidc.ca_file",
		"audit.enabled", "audit.dir", "audit.max_size_mb", "audit.max_age", "audit.retention", "audit.checkpoint_interval",
		"audit.buffer", "audit.fail_closed", "audit.spool_max_mb", "audit.pseudonymize", "audit.pseudonym_key_file",
		"audit.key_file", "audit.anchor_file", "audit.anchor_syslog",
		"storage.type", "storage.s3.endpoint", "storage.s3.region", "storage.s3.bucket", "storage.s3.prefix",
		"storage.s3.path_style", "storage.s3.access_key_env", "storage.s3.secret_key_env",
		"storage.s3.credentials_file", "storage.s3.cache_dir", "storage.s3.cache_max_mb", "storage.scrub_interval",
		"state.postgres.dsn_env", "state.postgres.dsn_file",
	}
	if diff := cmp.Diff(want, Keys()); diff != "" {
		t.Errorf("Keys() mismatch (-want +got):\n%s", diff)
	}
	for _, v := range EnvVars() {
		if _, ok := lookupField(v.Key); !ok {
			t.Errorf("EnvVars: %s sets unknown key %q", v.Name, v.Key)
		}
	}
}

// TestExample checks example.yaml, which the README's configuration
// reference shows: it loads, validates once resolved, documents every key,
// and shows the defaults.
func TestExample(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range Keys() {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(data), "\n"+strings.Repeat(" ", 2*strings.Count(key, "."))+leaf+":") {
			t.Errorf("example.yaml does not set %s", key)
		}
	}
	c, err := Load("example.yaml", envOf(map[string]string{"HOME": "/home/gopher"}))
	if err != nil {
		t.Fatalf("Load(example.yaml) = %v", err)
	}
	want := Default()
	for _, k := range Keys() {
		want.Sources[k] = SourceFile
	}
	if diff := cmp.Diff(want, c, ignoreUnexported, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("example.yaml does not show the defaults (-want +got):\n%s", diff)
	}
	if err := c.Resolve(testGoEnv); err != nil {
		t.Fatalf("Resolve = %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("example.yaml, resolved: Validate() = %v", err)
	}
}
