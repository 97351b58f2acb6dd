package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/server"
	"github.com/modgate/modgate/internal/testenv"
)

// BenchmarkStoreCacheHit measures cache hits over real loopback HTTP
// (so the disk store's and the S3 cache's zero-copy sends count) for one
// modgate on the disk store, one on S3 (a real versitygw) with its local
// cache, and the floor of net/http's FileServer on the disk store's
// directory, in the same run, alternating between them. Each sub-benchmark
// reports req/s and p99 for 8 concurrent keep-alive clients per target, and
// the ratios of disk and s3 to the floor.
// "mem=off" turns off the in-memory cache of small files, so every
// request reaches the store.
//
//	go test -run XXX -bench StoreCacheHit -benchtime 4000x ./internal/server
func BenchmarkStoreCacheHit(b *testing.B) {
	srv := testenv.NewS3(b)
	bucket := srv.NewBucket(b)
	up := testenv.NewUpstream(b, testenv.Fixtures(b))
	paths := map[string]string{
		"zip": "/example.com/hello/@v/v1.0.0.zip",
		"mod": "/example.com/hello/@v/v1.0.0.mod",
	}
	base := config.Default()
	base.Upstream.GOPROXY = up.URL()
	base.SumDB.GOSUMDB = up.VerifierKey()
	base.Audit.Enabled = false // the same for all; its cost is measured elsewhere
	s3edit := s3Config(b, srv, bucket)
	var floorURL string
	for _, mem := range []int{32, 0} {
		memName := map[int]string{32: "mem=on", 0: "mem=off"}[mem]
		// Every server runs at once, and each path is measured on all
		// of them back to back, so that the load of a shared machine
		// shifts the ratios as little as possible.
		urls := map[string]string{}
		for _, kind := range []string{"disk", "s3"} {
			c := base.Clone()
			c.DataDir = filepath.Join(b.TempDir(), "data")
			c.Cache.MemoryMB = mem
			if kind == "s3" {
				s3edit(&c)
			}
			url, stop := serveBench(b, c)
			defer stop()
			for _, p := range paths { // warm: fill, and for S3 the local cache
				if err := benchGet(http.DefaultClient, url+p); err != nil {
					b.Fatal(err)
				}
			}
			urls[kind] = url
			if kind == "disk" && floorURL == "" {
				floorURL = serveFloor(b, filepath.Join(c.DataDir, "modules"))
			}
		}
		urls["fileserver"] = floorURL
		for _, name := range []string{"zip", "mod"} {
			b.Run(name+"/"+memName, func(b *testing.B) {
				compareHTTP(b, []string{"disk", "s3", "fileserver"}, func(kind string) string { return urls[kind] + paths[name] })
			})
		}
	}
}

// serveFloor serves dir with net/http's FileServer on a loopback port
// until the benchmark ends.
func serveFloor(b *testing.B, dir string) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go hs.Serve(ln)
	b.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// serveBench starts modgate with cfg on a loopback port.
func serveBench(b *testing.B, cfg config.Config) (url string, stop func()) {
	cfg.Listen = "127.0.0.1:0"
	cfg.Log.Level = config.LogLevelWarn
	cfg.Server.DrainPeriod = config.Duration{}
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		b.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler), server.WithDialControl(testenv.LoopbackOnly))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		<-done
		srv.Close()
	}
}

func benchGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	return nil
}

// compareHTTP sends b.N GETs to each target from 8 concurrent keep-alive
// clients, in rounds of at most 500 that alternate between the targets, so
// that a change in the machine's load hits every target alike. It reports
// req/s and the 99th percentile latency of each, and the ratios of each
// to the last (the floor).
func compareHTTP(b *testing.B, kinds []string, url func(kind string) string) {
	const workers, round = 8, 500
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	lat := make(map[string][]time.Duration)
	busy := make(map[string]time.Duration)
	b.ResetTimer()
	for done := 0; done < b.N; done += round {
		n := min(round, b.N-done)
		for _, kind := range kinds {
			d, l := loadRound(b, client, url(kind), n, workers)
			busy[kind] += d
			lat[kind] = append(lat[kind], l...)
		}
	}
	b.StopTimer()
	rate := func(kind string) float64 { return float64(len(lat[kind])) / busy[kind].Seconds() }
	p99 := func(kind string) float64 {
		all := lat[kind]
		if len(all) == 0 {
			return 0
		}
		slices.Sort(all)
		return float64(all[len(all)*99/100].Microseconds())
	}
	floor := kinds[len(kinds)-1]
	for _, kind := range kinds {
		b.ReportMetric(rate(kind), kind+"-req/s")
		b.ReportMetric(p99(kind), kind+"-p99-µs")
		if kind != floor {
			b.ReportMetric(rate(kind)/rate(floor), kind+"/"+floor+"-req/s")
			b.ReportMetric(p99(kind)/p99(floor), kind+"/"+floor+"-p99")
		}
	}
	b.ReportMetric(0, "ns/op")
}

// loadRound sends n GETs of url from workers concurrent clients and
// returns how long that took and each request's latency.
func loadRound(b *testing.B, client *http.Client, url string, n, workers int) (time.Duration, []time.Duration) {
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	lat := make([][]time.Duration, workers)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range next {
				t0 := time.Now()
				if err := benchGet(client, url); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return time.Since(start), slices.Concat(lat...)
}
