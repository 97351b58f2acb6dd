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
// directory, in the same run. Each reports req/s and p99 for 8 concurrent
// keep-alive clients; divide modgate's by the floor's for the ratios.
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
	var diskDir string
	for _, mem := range []int{32, 0} {
		memName := map[int]string{32: "mem=on", 0: "mem=off"}[mem]
		for _, kind := range []string{"disk", "s3"} {
			c := base.Clone()
			c.DataDir = filepath.Join(b.TempDir(), "data")
			c.Cache.MemoryMB = mem
			if kind == "s3" {
				s3edit(&c)
			}
			url, stop := serveBench(b, c)
			for _, p := range paths { // warm: fill, and for S3 the local cache
				if err := benchGet(http.DefaultClient, url+p); err != nil {
					b.Fatal(err)
				}
			}
			if kind == "disk" {
				diskDir = c.DataDir
			}
			for name, p := range paths {
				b.Run(kind+"/"+memName+"/"+name, func(b *testing.B) { loadHTTP(b, url+p) })
			}
			stop()
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: http.FileServer(http.Dir(filepath.Join(diskDir, "modules")))}
	go hs.Serve(ln)
	defer hs.Close()
	for name, p := range paths {
		b.Run("fileserver/"+name, func(b *testing.B) { loadHTTP(b, "http://"+ln.Addr().String()+p) })
	}
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

// loadHTTP sends b.N GETs of url from 8 concurrent keep-alive clients and
// reports req/s and the 99th percentile latency.
func loadHTTP(b *testing.B, url string) {
	const workers = 8
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, DisableCompression: true}}
	defer client.CloseIdleConnections()
	lat := make([][]time.Duration, workers)
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	b.ResetTimer()
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
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
}
