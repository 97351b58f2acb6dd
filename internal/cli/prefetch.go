package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/prefetch"
	"github.com/modgate/modgate/internal/server"
)

const prefetchUsage = `usage: modgate prefetch [--server URL | --config FILE --data-dir DIR] [-j N] [-all] [--json] [go.mod|go.sum|DIR|MODULE@VERSION ...]

Prefetch fills modgate with everything the go command needs for a project:
the go.mod of every module version in its module graph (the pruned graph
of go 1.17 and later, as 'go list -m all' computes it) and the .info, .mod
and .zip of every module in its build list. A go.sum adds every version it
lists; a directory means every go.mod and go.sum below it (default ".");
MODULE@VERSION (a version or a query such as latest) means that module's
graph as if it were the main module. With -all, every listed version of
each named MODULE is fetched instead.

With --server, requests go to a running modgate, so its policy, access
control and audit log apply; the token comes from MODGATE_TOKEN, else from
the .netrc entry for the server's host (as the go command reads it).
Without --server, modgate is built in-process from the configuration
(--config, --data-dir, as for serve) and fills that data directory; use
it for a data directory no running modgate serves (a server's audit log
has one writer), and --server otherwise.

Running it again is cheap and finishes what an interrupted run started.
The summary counts files fetched, already cached, refused (with modgate's
answer, which names the policy rule) and failed.

Exit status: 0 everything fetched or cached, 1 something refused or failed,
2 bad arguments or configuration.

Flags:
`

// Prefetch implements `modgate prefetch`.
func Prefetch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("modgate prefetch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, prefetchUsage); fs.PrintDefaults() }
	serverURL := fs.String("server", "", "URL of a running modgate (default: build one in-process from the configuration)")
	configFile := fs.String("config", os.Getenv("MODGATE_CONFIG"), "YAML configuration file, without --server (also MODGATE_CONFIG)")
	dataDir := fs.String("data-dir", "", "data directory to fill, without --server (default: the configuration's)")
	jobs := fs.Int("j", 8, "files fetched at once")
	all := fs.Bool("all", false, "fetch every listed version of each named module")
	jsonOut := fs.Bool("json", false, "print the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *jobs < 1 {
		fmt.Fprintln(stderr, "modgate prefetch: -j must be at least 1")
		return 2
	}
	if *serverURL != "" && *dataDir != "" {
		fmt.Fprintln(stderr, "modgate prefetch: --server and --data-dir exclude each other")
		return 2
	}
	req, err := prefetchRequest(fs.Args(), *all)
	if err != nil {
		fmt.Fprintf(stderr, "modgate prefetch: %v\n", err)
		return 2
	}

	client := &prefetch.Client{Token: os.Getenv("MODGATE_TOKEN")}
	if *serverURL != "" {
		client.Base = strings.TrimSuffix(*serverURL, "/")
		if client.Token == "" {
			client.User, client.Password, _ = prefetch.NetrcLogin(prefetch.HostOf(*serverURL))
		}
	} else {
		stop, err := inProcess(ctx, client, *configFile, *dataDir, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "modgate prefetch: %v\n", err)
			return 2
		}
		defer stop()
	}

	r := &prefetch.Runner{Client: client, Jobs: *jobs, Progress: newProgress(stderr)}
	sum, err := r.Run(ctx, req)
	if p, ok := r.Progress.(interface{ finish() }); ok {
		p.finish()
	}
	if err != nil {
		fmt.Fprintf(stderr, "modgate prefetch: %v\n", err)
		return 2
	}
	if *jsonOut {
		stdout.Write(sum.JSON())
	} else {
		writePrefetchSummary(stdout, sum)
	}
	if !sum.OK() {
		return 1
	}
	return 0
}

// prefetchRequest sorts the arguments into files and modules.
func prefetchRequest(args []string, all bool) (prefetch.Request, error) {
	var req prefetch.Request
	if all {
		if len(args) == 0 {
			return req, errors.New("-all needs MODULE arguments")
		}
		req.Modules, req.All = args, true
		return req, nil
	}
	if len(args) == 0 {
		args = []string{"."}
	}
	for _, a := range args {
		st, err := os.Stat(a)
		switch {
		case err == nil && st.IsDir():
			mods, sums, err := prefetch.FindProjects(a)
			if err != nil {
				return req, err
			}
			if len(mods)+len(sums) == 0 {
				return req, fmt.Errorf("%s: no go.mod or go.sum in this directory or below", a)
			}
			req.GoMods = append(req.GoMods, mods...)
			req.GoSums = append(req.GoSums, sums...)
		case err == nil && strings.HasSuffix(a, ".sum"):
			req.GoSums = append(req.GoSums, a)
		case err == nil:
			req.GoMods = append(req.GoMods, a)
		case strings.Contains(a, "@"):
			req.Modules = append(req.Modules, a)
		default:
			return req, fmt.Errorf("%s: neither a file, a directory nor MODULE@VERSION", a)
		}
	}
	return req, nil
}

// inProcess builds modgate from the configuration, the way serve does, and
// points client at its handler without opening a port.
func inProcess(ctx context.Context, client *prefetch.Client, configFile, dataDir string, stderr io.Writer) (stop func(), err error) {
	cfg, err := loadConfig(ctx, configFile, func(set func(key, value, source string) error) error {
		if dataDir == "" {
			return nil
		}
		return set("data_dir", dataDir, "flag --data-dir")
	}, stderr)
	if err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	// Access lines for every file would bury the progress.
	if cfg.Log.Level == config.LogLevelDebug || cfg.Log.Level == config.LogLevelInfo {
		cfg.Log.Level = config.LogLevelWarn
	}
	log, stopLog := newLogger(cfg.Log, stderr)
	srv, err := server.New(cfg, log)
	if err != nil {
		stopLog()
		return nil, err
	}
	client.Base = "http://modgate.in-process"
	client.HTTP = &http.Client{Transport: handlerTransport{srv.Handler()}}
	return func() { srv.Close(); stopLog() }, nil
}

// writePrefetchSummary prints the summary for people.
func writePrefetchSummary(w io.Writer, s *prefetch.Summary) {
	secs := s.Duration.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(s.Bytes) / secs
	}
	fmt.Fprintf(w, "prefetch: %d module versions, %d files in %s: %d fetched, %d already cached, %d refused, %d failed (%s, %s/s)\n",
		s.Versions, s.Fetched+s.Cached+len(s.Refused)+len(s.Failed), s.Duration.Round(time.Millisecond),
		s.Fetched, s.Cached, len(s.Refused), len(s.Failed), humanBytes(s.Bytes), humanBytes(int64(rate)))
	for _, it := range s.Refused {
		fmt.Fprintf(w, "refused %s@%s %s: %s\n", it.Module, it.Version, it.File, it.Error)
	}
	for _, it := range s.Failed {
		fmt.Fprintf(w, "failed %s@%s %s: %s\n", it.Module, it.Version, it.File, it.Error)
	}
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// newProgress returns a progress bar when w is a terminal, else a writer
// of one plain line per file.
func newProgress(w io.Writer) prefetch.Progress {
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return newBar(w)
		}
	}
	return &lineProgress{w: w}
}

type lineProgress struct{ w io.Writer }

func (p *lineProgress) Planned(int) {}

func (p *lineProgress) Done(it prefetch.Item) {
	if it.Error != "" {
		fmt.Fprintf(p.w, "%s %s@%s %s: %s\n", it.Outcome, it.Module, it.Version, it.File, it.Error)
		return
	}
	fmt.Fprintf(p.w, "%s %s@%s %s (%s)\n", it.Outcome, it.Module, it.Version, it.File, humanBytes(it.Bytes))
}

// barProgress draws files done of files known, bytes, rate and ETA.
type barProgress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	total int
	bytes int64
	start time.Time
}

func newBar(w io.Writer) *barProgress {
	return &barProgress{
		start: time.Now(),
		bar: progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("files"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionFullWidth(),
			progressbar.OptionClearOnFinish(),
		),
	}
}

func (p *barProgress) Planned(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total += n
	p.bar.ChangeMax(p.total)
}

func (p *barProgress) Done(it prefetch.Item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bytes += it.Bytes
	rate := float64(p.bytes) / max(time.Since(p.start).Seconds(), 0.001)
	p.bar.Describe(fmt.Sprintf("%s %s/s", humanBytes(p.bytes), humanBytes(int64(rate))))
	p.bar.Add(1)
}

func (p *barProgress) finish() { p.bar.Finish() }
