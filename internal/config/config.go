package config

import (
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Config is modgate's whole configuration: the schema of the YAML file.
// The yaml tags are the keys users write; Keys lists them in file order.
//
// A Config is a value: copying it and changing the copy's scalar fields does
// not affect the original, but slices and Sources are shared until Redacted
// (or Clone) makes a deep copy.
type Config struct {
	// Listen is the TCP address the server listens on, as host:port.
	// An empty host listens on every interface; port 0 picks a free port.
	// Default "127.0.0.1:3000". Environment: MODGATE_LISTEN.
	Listen string `yaml:"listen"`

	// PublicURL is the URL clients use to reach modgate (what they put in
	// their GOPROXY), for example "https://modgate.corp.example". Optional.
	// It must be http or https. modgate uses it, with Listen, to recognise
	// itself in upstream.goproxy and leave itself out, so it never asks
	// itself for a module.
	// Environment: MODGATE_PUBLIC_URL.
	PublicURL string `yaml:"public_url"`

	// DataDir is the directory holding the module files modgate stores and
	// its other state. It must be absolute. Default: the per-user data
	// directory (see PerUserDataDir), for example
	// $XDG_DATA_HOME/modgate or $HOME/.local/share/modgate.
	// Environment: MODGATE_DATA_DIR.
	DataDir string `yaml:"data_dir"`

	// Log configures the process log (not the audit log).
	Log Log `yaml:"log"`

	// Upstream configures where modules are fetched from.
	Upstream Upstream `yaml:"upstream"`

	// SumDB configures the checksum database modules are verified against.
	SumDB SumDB `yaml:"sumdb"`

	// Cache configures how long mutable answers are reused.
	Cache Cache `yaml:"cache"`

	// Server configures the HTTP server.
	Server Server `yaml:"server"`

	// Metrics configures who may read /metrics.
	Metrics Metrics `yaml:"metrics"`

	// TLS serves HTTPS instead of plain HTTP (see tls.go).
	TLS TLS `yaml:"tls"`

	// Private maps module patterns to Git servers (see private.go).
	Private Private `yaml:"private"`

	// Policy says which modules and versions may be served (see policy.go).
	Policy Policy `yaml:"policy"`

	// Auth says who may read, publish and administer (see auth.go).
	Auth Auth `yaml:"auth"`

	// Audit configures the tamper-evident audit log (see audit.go).
	Audit Audit `yaml:"audit"`

	// Storage says where module files are kept (see storage.go).
	Storage Storage `yaml:"storage"`
	// State says where the state replicas share is kept (see state.go).
	State State `yaml:"state"`

	// Sources maps every key (as in Keys: "upstream.goproxy") to where its
	// value came from: "default", "config file", "env MODGATE_LISTEN",
	// "flag --listen", "go env GOPROXY", ... It is filled by Default, Load,
	// Set and Resolve and is not part of the file.
	Sources map[string]string `yaml:"-"`

	// File is the config file Load read, "" when none; a hot reload of
	// the policy reads it again.
	File string `yaml:"-"`

	// env is the environment Load was given; Resolve uses it for the
	// per-user data directory. Nil means os.Getenv.
	env func(string) string
	// pos maps keys set by the config file to "file:line", for messages.
	pos map[string]string
	// loadProblems are the problems Load found; Validate reports them
	// with its own.
	loadProblems []error
}

// Log configures the process log.
type Log struct {
	// Level is the least severe level written: debug, info, warn or error.
	// Default info. Environment: MODGATE_LOG_LEVEL.
	Level LogLevel `yaml:"level"`

	// Format is the log line format: text (key=value, for people) or json
	// (one object a line, for collectors). Default text.
	// Environment: MODGATE_LOG_FORMAT.
	Format LogFormat `yaml:"format"`
}

// Upstream configures where modules are fetched from.
type Upstream struct {
	// GOPROXY is the ordered list of upstreams in the go command's GOPROXY
	// syntax: URLs (https, http or file) and the keywords "direct" and
	// "off", separated by "," (try the next entry only when this one says
	// "not found") or "|" (try the next entry after any failure).
	// Example "https://proxy.corp.example,https://mirror.example|direct".
	// Default: `go env GOPROXY`. Entries pointing at modgate itself (its
	// Listen address or PublicURL) are left out when the server builds its
	// upstreams. "direct" fetches public modules from their Git origin
	// (see Direct) and verifies them like any other fetch.
	// Environment: MODGATE_GOPROXY.
	GOPROXY string `yaml:"goproxy"`

	// NoProxy lists module path patterns (GONOPROXY syntax: path.Match
	// globs matched against path prefixes, like "corp.example/*") that are
	// never fetched from the proxies in GOPROXY. Empty means the default:
	// `go env GONOPROXY`, else `go env GOPRIVATE`.
	NoProxy []string `yaml:"noproxy"`

	// DialTimeout bounds establishing a connection to an upstream.
	// Default 10s.
	DialTimeout Duration `yaml:"dial_timeout"`

	// ResponseTimeout bounds the time from sending a request to the first
	// byte of the response. Default 30s.
	ResponseTimeout Duration `yaml:"response_timeout"`

	// IdleTimeout fails a response body that makes no progress for this
	// long; a large download that keeps moving is never cut off.
	// Default 60s.
	IdleTimeout Duration `yaml:"idle_timeout"`

	// Retries is how many times an idempotent request is retried after an
	// upstream failure (not after "not found"), from 0 to 10. Default 2.
	Retries int `yaml:"retries"`

	// PrefetchWorkers is how many go.mod files modgate fetches ahead at
	// once: when a client's request fills a go.mod, the go.mod files of its
	// requirements are fetched and verified in the background, since the
	// go command asks for them next, and theirs, PrefetchDepth levels deep.
	// From 0 (disabled) to 64. Default 8.
	PrefetchWorkers int `yaml:"prefetch_workers"`

	// PrefetchDepth is how many levels of requirements the go.mod prefetch
	// follows from a client's go.mod, from 1 to 8. Default 1.
	PrefetchDepth int `yaml:"prefetch_depth"`

	// ZipAheadWorkers is how many zips modgate fetches ahead at once: when
	// a client gets a version's .info file, the version's zip is fetched
	// and verified in the background, since `go mod download` asks for it
	// next. From 0 (disabled) to 64. Default 4.
	ZipAheadWorkers int `yaml:"zip_ahead_workers"`

	// RedirectHosts lists the hosts an upstream may redirect requests to,
	// besides the upstream's own host and port: "host", "host:port" or
	// "*.domain" (every subdomain), for object stores that proxies send
	// zips to. Redirects anywhere else, more than 3 in a row, or changing
	// the scheme are refused (502). Applies to every HTTP request modgate
	// makes to upstreams, the checksum database and the vulnerability
	// database. Default: none.
	RedirectHosts []string `yaml:"redirect_hosts"`

	// MaxConcurrentFills bounds the upstream fetches running at once for
	// clients (files, lists, queries; concurrent requests for one file
	// share one fetch). Requests beyond it wait in a queue. From 1 to 4096;
	// 0 (the default) means max(8, 4 × GOMAXPROCS), filled in by Resolve.
	// Background work (requirement prefetch, list refreshes) has a budget
	// of its own, so it never takes a client's place: PrefetchWorkers
	// slots, at least a quarter of MaxConcurrentFills, at most all of it.
	MaxConcurrentFills int `yaml:"max_concurrent_fills"`

	// FillQueueTimeout is how long a request waits for a fill slot before
	// it is answered 503 with Retry-After. Default 10s.
	FillQueueTimeout Duration `yaml:"fill_queue_timeout"`

	// RequestBudget bounds the time one request spends waiting for one
	// upstream's answer, across retries (connecting, response headers,
	// backoff); a body that keeps arriving is not cut off (see
	// IdleTimeout). Default 20s.
	RequestBudget Duration `yaml:"request_budget"`

	// RefreshWait is how long a request waits for an expired list, latest
	// or query answer, or a checksum database tree head or partial tile,
	// to be refreshed when an older copy exists; after it the older copy
	// is served (marked stale) and the refresh goes on in the background.
	// Default 2s.
	RefreshWait Duration `yaml:"refresh_wait"`

	// Direct tunes the "direct" entry of GOPROXY: public modules fetched
	// from their version-control origin.
	Direct UpstreamDirect `yaml:"direct"`
}

// UpstreamDirect tunes how "direct" reaches Git hosts: over https, with
// no credentials, never to loopback or private addresses. Repositories
// are mirrored in {data_dir}/git-direct.
type UpstreamDirect struct {
	// Proxy is the http(s) URL of the proxy (one that accepts CONNECT)
	// through which direct fetches reach Git hosts, for both modgate's own
	// requests and git's. Empty means HTTPS_PROXY and NO_PROXY from the
	// environment.
	Proxy string `yaml:"proxy"`

	// CAFile is a PEM bundle of the certificate authorities trusted for
	// Git hosts instead of the system's (a TLS-inspecting egress proxy).
	// Empty means the system's.
	CAFile string `yaml:"ca_file"`
}

// SumDB configures the checksum database.
type SumDB struct {
	// GOSUMDB names the checksum database in the go command's GOSUMDB
	// syntax: "off", a database name with a well-known key, "name+hash+key"
	// (a full verifier key), each optionally followed by a space and the
	// URL to reach it. Default: `go env GOSUMDB`.
	// Environment: MODGATE_GOSUMDB.
	GOSUMDB string `yaml:"gosumdb"`

	// NoSumDB lists module path patterns (GONOSUMDB syntax) that are not
	// verified against the checksum database. Empty means the default:
	// `go env GONOSUMDB`, else `go env GOPRIVATE`.
	NoSumDB []string `yaml:"nosumdb"`
}

// Cache configures how long mutable answers are reused and how much
// memory holds small files.
type Cache struct {
	// ListTTL is how long @v/list, @latest and version queries are served
	// without asking the upstream again. Default 1m.
	ListTTL Duration `yaml:"list_ttl"`

	// NegativeTTL is how long an upstream "not found" is remembered.
	// Default 1m.
	NegativeTTL Duration `yaml:"negative_ttl"`

	// SumDBLatestTTL is how long the checksum database's signed tree head
	// (/sumdb/NAME/latest) is reused. Default 30s.
	SumDBLatestTTL Duration `yaml:"sumdb_latest_ttl"`

	// MemoryMB is how many megabytes of small module files (.info and .mod,
	// up to 64 KiB each) are kept in memory in front of the data directory,
	// least recently used out first. The go command asks for about two of
	// them per zip, so this takes most requests off the disk. 0 disables
	// it. Default 32.
	MemoryMB int `yaml:"memory_mb"`
}

// Server configures the HTTP server.
type Server struct {
	// ShutdownTimeout is how long in-flight requests (downloads) get to
	// finish after a shutdown signal before they are cut off. Default 30s.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout Duration `yaml:"read_header_timeout"`

	// DrainPeriod is how long, after a shutdown signal, modgate keeps
	// accepting and serving requests while /readyz answers 503, so that a
	// load balancer polling /readyz stops sending work before the listener
	// closes. 0 closes the listener at once. Default 5s.
	DrainPeriod Duration `yaml:"drain_period"`

	// ReplicaName names this process among the replicas that share one
	// database (state.postgres), in the audit records it writes: letters,
	// digits and ".-_:@", at most 64. Empty (the default) means
	// hostname:pid.
	ReplicaName string `yaml:"replica_name"`
}

// Metrics configures who may read /metrics, which shows rule names and
// upstream URLs.
type Metrics struct {
	// Listen, when set, serves /metrics on this separate host:port only
	// (without authentication: protect it by the network), and the main
	// listener no longer serves it. Default "" (served on listen).
	Listen string `yaml:"listen"`

	// Access says who may read /metrics on the main listener: "auto"
	// (open when auth.anonymous.enabled, else the "metrics" or "admin"
	// scope is required), "scope" (always the "metrics" or "admin" scope)
	// or "open" (anyone who reaches the listener). Default auto.
	Access MetricsAccess `yaml:"access"`
}

// DefaultMaxConcurrentFills is the default of upstream.max_concurrent_fills:
// max(8, 4 × GOMAXPROCS). A fill mostly waits on the network, so a few per
// core keep the machine busy without letting a burst of cold requests open
// hundreds of upstream connections and file descriptors.
func DefaultMaxConcurrentFills() int { return max(8, 4*runtime.GOMAXPROCS(0)) }

// Source values recorded in Config.Sources.
const (
	SourceDefault = "default"
	SourceFile    = "config file"
)

// Default returns the built-in defaults. The fields derived from the Go
// environment and the data directory (upstream.goproxy, upstream.noproxy,
// sumdb.gosumdb, sumdb.nosumdb, data_dir) are empty until Resolve.
// Every key's source is "default".
func Default() Config {
	c := Config{
		Listen: "127.0.0.1:3000",
		Log:    Log{Level: LogLevelInfo, Format: LogFormatText},
		Upstream: Upstream{
			DialTimeout:      Duration{10 * time.Second},
			ResponseTimeout:  Duration{30 * time.Second},
			IdleTimeout:      Duration{60 * time.Second},
			Retries:          2,
			PrefetchWorkers:  8,
			PrefetchDepth:    1,
			ZipAheadWorkers:  4,
			FillQueueTimeout: Duration{10 * time.Second},
			RequestBudget:    Duration{20 * time.Second},
			RefreshWait:      Duration{2 * time.Second},
		},
		Cache: Cache{
			ListTTL:        Duration{time.Minute},
			NegativeTTL:    Duration{time.Minute},
			SumDBLatestTTL: Duration{30 * time.Second},
			MemoryMB:       32,
		},
		Server: Server{
			ShutdownTimeout:   Duration{30 * time.Second},
			ReadHeaderTimeout: Duration{10 * time.Second},
			DrainPeriod:       Duration{5 * time.Second},
		},
		Metrics: Metrics{Access: MetricsAccessAuto},
		TLS:     TLS{MinVersion: "1.2"},
		Private: Private{GitTimeout: Duration{2 * time.Minute}},
		Auth: Auth{
			Anonymous:      AuthAnonymous{Enabled: true, Scopes: []string{"read:*"}},
			Tokens:         AuthTokens{Enabled: true},
			FailedAttempts: AuthFailedAttempts{PerMinute: 10},
		},
		Policy: Policy{
			VulnDB: PolicyVulnDB{SyncInterval: Duration{time.Hour}},
			Ages:   PolicyAges{PublishTimeSource: "info"},
			// A rule that names versions refuses pseudo-versions it
			// cannot trace to a tag.
			UnmappedPseudoVersions: "block",
		},
		Audit: Audit{
			Enabled:            true,
			MaxSizeMB:          100,
			MaxAge:             Duration{24 * time.Hour},
			CheckpointInterval: Duration{time.Minute},
			Buffer:             1024,
			SpoolMaxMB:         256,
		},
		Storage: defaultStorage(),
		Sources: make(map[string]string),
	}
	for _, f := range schema() {
		c.Sources[f.key] = SourceDefault
	}
	return c
}

// Keys returns every configuration key in file order, dotted:
// "listen", ..., "upstream.goproxy", ..., "server.read_header_timeout".
func Keys() []string {
	var keys []string
	for _, f := range schema() {
		keys = append(keys, f.key)
	}
	return keys
}

// Source returns where the value of key came from, "default" if unknown.
func (c Config) Source(key string) string {
	if s := c.Sources[key]; s != "" {
		return s
	}
	return SourceDefault
}

// Clone returns a deep copy of c: slices and maps are not shared.
func (c Config) Clone() Config {
	deepCopySlices(reflect.ValueOf(&c).Elem())
	c.Sources = maps.Clone(c.Sources)
	c.pos = maps.Clone(c.pos)
	if c.Sources == nil {
		c.Sources = make(map[string]string)
	}
	return c
}

// deepCopySlices replaces every slice reachable from the struct v (which
// must be addressable) with a copy, recursively, so that sections added
// later cannot make Clone share memory by accident.
func deepCopySlices(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				deepCopySlices(v.Field(i))
			}
		}
	case reflect.Slice:
		if v.IsNil() {
			return
		}
		cp := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(cp, v)
		for i := range cp.Len() {
			deepCopySlices(cp.Index(i))
		}
		v.Set(cp)
	}
}

// setSource records where key's value came from.
func (c *Config) setSource(key, source string) {
	if c.Sources == nil {
		c.Sources = make(map[string]string)
	}
	c.Sources[key] = source
	if source != SourceFile {
		delete(c.pos, key) // the file's line no longer explains the value
	}
}

// A field is one leaf of the schema: a key users write and where it lives
// in Config.
type field struct {
	key   string // dotted: "upstream.retries"
	index []int  // reflect field index path from Config
	typ   reflect.Type
}

var durationType = reflect.TypeFor[Duration]()

// isSection reports whether t is a nested section (a mapping of keys in the
// file) rather than a leaf value.
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != durationType
}

// isSectionList reports whether t is a list of sections ("private.sources"):
// in the file, a sequence of mappings; in the schema, one leaf.
func isSectionList(t reflect.Type) bool {
	return t.Kind() == reflect.Slice && isSection(t.Elem())
}

// yamlName returns the key of a struct field, or "" if it is not in the file.
func yamlName(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// schema lists the leaves of Config in declaration order. It is derived
// from the struct so that the file, the sources and the printed
// configuration can never disagree about which keys exist.
func schema() []field {
	var out []field
	var walk func(t reflect.Type, prefix string, index []int)
	walk = func(t reflect.Type, prefix string, index []int) {
		for i := range t.NumField() {
			sf := t.Field(i)
			name := yamlName(sf)
			if name == "" {
				continue
			}
			idx := append(slices.Clone(index), i)
			if isSection(sf.Type) {
				walk(sf.Type, prefix+name+".", idx)
				continue
			}
			out = append(out, field{key: prefix + name, index: idx, typ: sf.Type})
		}
	}
	walk(reflect.TypeFor[Config](), "", nil)
	return out
}

// lookupField returns the schema leaf for key.
func lookupField(key string) (field, bool) {
	for _, f := range schema() {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// sectionKeys returns the keys directly inside the struct type t, for
// "unknown key" messages.
func sectionKeys(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	return names
}
