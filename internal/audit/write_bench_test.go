package audit_test

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/audit"
)

// BenchmarkWrite is what one record costs the process, the writer
// goroutine included (cpu-ns/op: user and system CPU time per record), when
// records arrive one at a time, as cache hits do: the request's Write, and
// the writer's encoding, hashing and write(2).
func BenchmarkWrite(b *testing.B) {
	key, err := audit.LoadOrCreateKey(filepath.Join(b.TempDir(), "audit.key"))
	if err != nil {
		b.Fatal(err)
	}
	l, err := audit.Open(audit.Config{Dir: b.TempDir(), SigningKey: key})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := audit.Record{
		RequestID: "ab12cd34-1x", Identity: "anonymous", ClientIP: "127.0.0.1", UserAgent: "Go-http-client/1.1",
		Module: "github.com/aws/aws-sdk-go-v2", Version: "v1.47.7", File: "zip", Result: audit.ResultHit,
		Bytes: 884383, Duration: 200 * time.Microsecond,
	}
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		l.Write(rec)
		// A request's worth of time between records, so that the
		// writer sees them one by one, as it does serving requests.
		for t0 := time.Now(); time.Since(t0) < 20*time.Microsecond; {
		}
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
