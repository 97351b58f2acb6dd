package config

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testGoEnv is a Go environment as `go env` would report it.
var testGoEnv = GoEnv{
	GOPROXY: "https://proxy.test,direct",
	GOSUMDB: "sum.test",
}

func TestResolve(t *testing.T) {
	type want struct {
		goproxy, gosumdb string
		noproxy, nosumdb []string
		dataDir          string
		sources          map[string]string
	}
	tests := []struct {
		name   string
		file   string
		env    map[string]string
		goenv  GoEnv
		modify func(c *Config) // flags, applied after Load
		want   want
	}{
		{
			name:  "everything from go env",
			env:   map[string]string{"HOME": "/home/gopher"},
			goenv: GoEnv{GOPROXY: "https://proxy.test,direct", GOSUMDB: "sum.test", GONOPROXY: "a.example", GONOSUMDB: "b.example,,c.example", GOPRIVATE: "p.example"},
			want: want{
				goproxy: "https://proxy.test,direct", gosumdb: "sum.test",
				noproxy: []string{"a.example"}, nosumdb: []string{"b.example", "c.example"},
				dataDir: "/home/gopher/.local/share/modgate",
				sources: map[string]string{
					"upstream.goproxy": "go env GOPROXY", "sumdb.gosumdb": "go env GOSUMDB",
					"upstream.noproxy": "go env GONOPROXY", "sumdb.nosumdb": "go env GONOSUMDB",
					"data_dir": "default",
				},
			},
		},
		{
			name:  "GOPRIVATE when GONOPROXY and GONOSUMDB follow it",
			env:   map[string]string{"XDG_DATA_HOME": "/xdg"},
			goenv: GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "off", GONOPROXY: "corp.example,x.example", GONOSUMDB: "corp.example,x.example", GOPRIVATE: "corp.example,x.example"},
			want: want{
				goproxy: "https://proxy.test", gosumdb: "off",
				noproxy: []string{"corp.example", "x.example"}, nosumdb: []string{"corp.example", "x.example"},
				dataDir: "/xdg/modgate",
				sources: map[string]string{
					"upstream.noproxy": "go env GOPRIVATE", "sumdb.nosumdb": "go env GOPRIVATE",
				},
			},
		},
		{
			name:  "GOPRIVATE fills an empty GONOPROXY",
			env:   map[string]string{"HOME": "/h"},
			goenv: GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "sum.test", GOPRIVATE: "corp.example"},
			want: want{
				goproxy: "https://proxy.test", gosumdb: "sum.test",
				noproxy: []string{"corp.example"}, nosumdb: []string{"corp.example"},
				dataDir: "/h/.local/share/modgate",
				sources: map[string]string{"upstream.noproxy": "go env GOPRIVATE", "sumdb.nosumdb": "go env GOPRIVATE"},
			},
		},
		{
			name:  "configured values win",
			file:  "data_dir: /srv/modgate\nupstream:\n  goproxy: https://mine.example\n  noproxy: [mine.example]\nsumdb:\n  nosumdb: [mine.example]\n",
			env:   map[string]string{"MODGATE_GOSUMDB": "off"},
			goenv: GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "sum.test", GOPRIVATE: "corp.example"},
			want: want{
				goproxy: "https://mine.example", gosumdb: "off",
				noproxy: []string{"mine.example"}, nosumdb: []string{"mine.example"},
				dataDir: "/srv/modgate",
				sources: map[string]string{
					"upstream.goproxy": "config file", "sumdb.gosumdb": "env MODGATE_GOSUMDB",
					"upstream.noproxy": "config file", "sumdb.nosumdb": "config file", "data_dir": "config file",
				},
			},
		},
		{
			name:   "flags win",
			env:    map[string]string{"HOME": "/h"},
			goenv:  testGoEnv,
			modify: func(c *Config) { _ = c.Set("upstream.goproxy", "https://flag.example", "flag --goproxy") },
			want: want{
				goproxy: "https://flag.example", gosumdb: "sum.test", dataDir: "/h/.local/share/modgate",
				sources: map[string]string{"upstream.goproxy": "flag --goproxy", "upstream.noproxy": "default"},
			},
		},
		{
			// Leaving modgate out of its own upstreams is upstream.Build's job.
			name:  "go env GOPROXY naming modgate is copied unchanged",
			file:  "public_url: https://modgate.corp.example\nlisten: :3000\n",
			env:   map[string]string{"HOME": "/h"},
			goenv: GoEnv{GOPROXY: "https://modgate.corp.example|http://127.0.0.1:3000,https://proxy.test", GOSUMDB: "sum.test"},
			want: want{
				goproxy: "https://modgate.corp.example|http://127.0.0.1:3000,https://proxy.test", gosumdb: "sum.test",
				dataDir: "/h/.local/share/modgate",
				sources: map[string]string{"upstream.goproxy": "go env GOPROXY"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
				t.Skip("data directories differ on this OS; see TestPerUserDataDir")
			}
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			c, err := Load(path, envOf(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if tt.modify != nil {
				tt.modify(&c)
			}
			if err := c.Resolve(tt.goenv); err != nil {
				t.Fatalf("Resolve(%+v) = %v", tt.goenv, err)
			}
			got := want{
				goproxy: c.Upstream.GOPROXY, gosumdb: c.SumDB.GOSUMDB,
				noproxy: c.Upstream.NoProxy, nosumdb: c.SumDB.NoSumDB,
				dataDir: c.DataDir, sources: map[string]string{},
			}
			for k := range tt.want.sources {
				got.sources[k] = c.Source(k)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(want{}), cmp.Transformer("nilEmpty", func(s []string) []string {
				if len(s) == 0 {
					return nil
				}
				return s
			})); diff != "" {
				t.Errorf("Resolve(%+v) mismatch (-want +got):\n%s", tt.goenv, diff)
			}
		})
	}
}

func TestResolveNoDataDir(t *testing.T) {
	c, err := Load("", envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Resolve(testGoEnv)
	if err == nil || !strings.Contains(err.Error(), "set data_dir or MODGATE_DATA_DIR") {
		t.Fatalf("Resolve without HOME = %v, want an error saying to set data_dir", err)
	}
	if c.Upstream.GOPROXY != testGoEnv.GOPROXY {
		t.Errorf("Resolve without HOME: goproxy = %q, want it resolved anyway", c.Upstream.GOPROXY)
	}
}

func TestPerUserDataDir(t *testing.T) {
	type test struct {
		name string
		env  map[string]string
		want string // "" means an error
	}
	var tests []test
	switch runtime.GOOS {
	case "windows":
		tests = []test{
			{name: "LocalAppData", env: map[string]string{"LocalAppData": `C:\Users\g\AppData\Local`}, want: `C:\Users\g\AppData\Local\modgate`},
			{name: "nothing", env: nil, want: ""},
		}
	case "darwin", "ios":
		tests = []test{
			{name: "XDG wins", env: map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/Users/g"}, want: "/xdg/modgate"},
			{name: "HOME", env: map[string]string{"HOME": "/Users/g"}, want: "/Users/g/Library/Application Support/modgate"},
			{name: "nothing", env: nil, want: ""},
		}
	default:
		tests = []test{
			{name: "XDG wins", env: map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/home/g"}, want: "/xdg/modgate"},
			{name: "relative XDG is ignored", env: map[string]string{"XDG_DATA_HOME": "xdg", "HOME": "/home/g"}, want: "/home/g/.local/share/modgate"},
			{name: "HOME", env: map[string]string{"HOME": "/home/g"}, want: "/home/g/.local/share/modgate"},
			{name: "nothing", env: nil, want: ""},
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PerUserDataDir(envOf(tt.env))
			if tt.want == "" {
				if err == nil {
					t.Fatalf("PerUserDataDir(%v) = %q, want an error", tt.env, got)
				}
				return
			}
			if err != nil || got != filepath.FromSlash(tt.want) {
				t.Fatalf("PerUserDataDir(%v) = %q, %v, want %q", tt.env, got, err, tt.want)
			}
		})
	}
}

func TestReadGoEnv(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	// GOENV=off keeps the user's go env file out; the variables decide.
	t.Setenv("GOENV", "off")
	t.Setenv("GOPROXY", "https://proxy.test,direct")
	t.Setenv("GOSUMDB", "sum.test")
	t.Setenv("GOPRIVATE", "corp.example")
	t.Setenv("GONOPROXY", "")
	t.Setenv("GONOSUMDB", "nosum.example")
	got, err := ReadGoEnv(t.Context())
	if err != nil {
		t.Fatalf("ReadGoEnv() = %v", err)
	}
	want := GoEnv{
		GOPROXY:   "https://proxy.test,direct",
		GOSUMDB:   "sum.test",
		GONOSUMDB: "nosum.example",
		GONOPROXY: "corp.example", // the go command's default: GOPRIVATE
		GOPRIVATE: "corp.example",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ReadGoEnv() mismatch (-want +got):\n%s", diff)
	}
}

func TestReadGoEnvWithoutGo(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no go command here
	t.Setenv("GOSUMDB", "sum.test")
	t.Setenv("GOPRIVATE", "corp.example")
	t.Setenv("GONOPROXY", "")
	t.Setenv("GONOSUMDB", "")

	t.Setenv("GOPROXY", "https://proxy.test")
	got, err := ReadGoEnv(t.Context())
	want := GoEnv{GOPROXY: "https://proxy.test", GOSUMDB: "sum.test", GONOSUMDB: "corp.example", GONOPROXY: "corp.example", GOPRIVATE: "corp.example"}
	if err != nil || got != want {
		t.Errorf("ReadGoEnv() without go = %+v, %v, want %+v, nil", got, err, want)
	}

	t.Setenv("GOPROXY", "")
	got, err = ReadGoEnv(t.Context())
	if err == nil || !strings.Contains(err.Error(), "the go command is not installed and $GOPROXY is unset") {
		t.Errorf("ReadGoEnv() without go and GOPROXY = %+v, %v, want an error saying so", got, err)
	}
	if got.GOSUMDB != "sum.test" {
		t.Errorf("ReadGoEnv() without go and GOPROXY = %+v, want the other values still read", got)
	}
}
