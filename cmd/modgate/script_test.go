package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// TestScripts runs the end-to-end scripts in testdata/script: behaviour a
// user can observe, written as the commands a user would type.
//
// Custom commands:
//
//	upstream                     start the fake upstream (fixtures of internal/testenv)
//	serve [CONFIG]               start modgate (from CONFIG, a YAML file in the archive) in front of it;
//	                             sets GOPROXY and GOSUMDB for the go command
//	fault down|up                make the upstream fail every request, or recover
//	fault tamper|untamper M@V    serve a tampered zip for M@V, or the genuine one
//	stored KEY                   KEY (an escaped protocol path) is in modgate's store
//	upstream-count PATH N        the upstream received exactly N requests for PATH
func TestScripts(t *testing.T) {
	gocache := testenv.HostGoCache(t)
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "script"),
		Setup: func(env *testscript.Env) error {
			work := env.WorkDir
			env.Values[stateKey{}] = &scriptState{}
			env.Setenv("PATH", filepath.Join(runtime.GOROOT(), "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
			if err := testenv.TelemetryOff(filepath.Join(work, "home")); err != nil {
				return err
			}
			for k, v := range map[string]string{
				"HOME": filepath.Join(work, "home"), "GOPATH": filepath.Join(work, "gopath"),
				"GOMODCACHE": filepath.Join(work, "modcache"), "GOCACHE": gocache,
				"GOFLAGS": "-modcacherw", "GOENV": "off", "GOTOOLCHAIN": "local", "CGO_ENABLED": "0",
				"GOPRIVATE": "", "GONOPROXY": "", "GONOSUMDB": "", "GOINSECURE": "",
			} {
				env.Setenv(k, v)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"upstream":       cmdUpstream,
			"serve":          cmdServe,
			"fault":          cmdFault,
			"stored":         cmdStored,
			"upstream-count": cmdUpstreamCount,
		},
	})
}

type stateKey struct{}

// scriptState is what one script's commands share.
type scriptState struct {
	up      *testenv.Upstream
	dataDir string
}

func state(ts *testscript.TestScript) *scriptState {
	return ts.Value(stateKey{}).(*scriptState)
}

func cmdUpstream(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: upstream")
	}
	mods, err := testenv.LoadFixtures()
	ts.Check(err)
	up, err := testenv.StartUpstream(mods)
	ts.Check(err)
	ts.Defer(up.Close)
	state(ts).up = up
	ts.Setenv("UPSTREAM", up.URL())
}

func cmdServe(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	if neg || len(args) > 1 || st.up == nil {
		ts.Fatalf("usage: serve [CONFIG] (after upstream)")
	}
	file := ""
	if len(args) == 1 {
		file = ts.MkAbs(args[0])
	}
	cfg, err := config.Load(file, func(string) string { return "" })
	ts.Check(err)
	if cfg.Upstream.GOPROXY == "" {
		cfg.Upstream.GOPROXY = st.up.URL()
	}
	if cfg.SumDB.GOSUMDB == "" {
		cfg.SumDB.GOSUMDB = st.up.VerifierKey()
	}
	cfg.DataDir = ts.MkAbs("data")
	cfg.Upstream.Retries = 0
	cfg.Server.DrainPeriod = config.Duration{} // scripts stop their servers at once
	ts.Check(cfg.Resolve(config.GoEnv{}))
	ts.Check(cfg.Validate())
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := server.New(cfg, log, server.WithDialControl(testenv.LoopbackOnly))
	ts.Check(err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	ts.Defer(func() {
		stop()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
		}
		srv.Close()
	})
	st.dataDir = cfg.DataDir
	ts.Setenv("GOPROXY", "http://"+ln.Addr().String())
	ts.Setenv("GOSUMDB", st.up.VerifierKey())
}

func cmdFault(ts *testscript.TestScript, neg bool, args []string) {
	up := state(ts).up
	if neg || len(args) == 0 || up == nil {
		ts.Fatalf("usage: fault down|up|tamper M@V|untamper M@V (after upstream)")
	}
	switch {
	case args[0] == "down" && len(args) == 1:
		up.SetDown(true)
	case args[0] == "up" && len(args) == 1:
		up.SetDown(false)
	case (args[0] == "tamper" || args[0] == "untamper") && len(args) == 2:
		path, version, ok := strings.Cut(args[1], "@")
		if !ok {
			ts.Fatalf("fault %s: want MODULE@VERSION", args[0])
		}
		up.SetTamper(path, version, args[0] == "tamper")
	default:
		ts.Fatalf("fault: unknown fault %q", strings.Join(args, " "))
	}
}

func cmdStored(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	if len(args) != 1 || st.dataDir == "" {
		ts.Fatalf("usage: stored KEY (after serve)")
	}
	_, err := os.Stat(filepath.Join(st.dataDir, "modules", filepath.FromSlash(args[0])))
	switch {
	case neg && err == nil:
		ts.Fatalf("%s is stored", args[0])
	case !neg && err != nil:
		ts.Fatalf("%s is not stored: %v", args[0], err)
	}
}

func cmdUpstreamCount(ts *testscript.TestScript, neg bool, args []string) {
	up := state(ts).up
	if neg || len(args) != 2 || up == nil {
		ts.Fatalf("usage: upstream-count PATH N (after upstream)")
	}
	var want int
	if _, err := fmt.Sscan(args[1], &want); err != nil {
		ts.Fatalf("upstream-count: %v", err)
	}
	if got := up.Count(args[0]); got != want {
		ts.Fatalf("upstream received %d requests for %s, want %d (all requests: %v)", got, args[0], want, up.Requests())
	}
}
