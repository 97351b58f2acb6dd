package health

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func fails(err error) Checker { return CheckerFunc(func(context.Context) error { return err }) }

var ok = CheckerFunc(func(context.Context) error { return nil })

// TestRun: each check's state, a required failure makes the report
// unready and an optional one only degraded, and a driver's error text (a
// DSN with a password) is never in the report's text.
func TestRun(t *testing.T) {
	secret := errors.New("dial postgres://modgate:hunter2@db.internal:5432: connection refused")
	r := Run(t.Context(), time.Second, []Check{
		{Name: "serving", Checker: ok},
		{Name: "postgres", Checker: fails(secret), Optional: true},
		{Name: "s3", Checker: fails(Reasonf(errors.New("503 from 127.0.0.1:9"), "bucket unreachable"))},
	})
	if r.Ready() {
		t.Error("Ready with s3 failing")
	}
	want := "not ready\nserving: ok\npostgres: degraded (unavailable)\ns3: failing (bucket unreachable)"
	if got := r.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(r.Err(), ErrUnready) || !strings.Contains(r.Err().Error(), "s3: bucket unreachable") || strings.Contains(r.Err().Error(), "postgres") {
		t.Errorf("Err = %v, want ErrUnready naming s3 only", r.Err())
	}
	if !errors.Is(r.Results[1].Err, secret) {
		t.Errorf("postgres Err = %v, want the full error kept for the log", r.Results[1].Err)
	}

	r = Run(t.Context(), time.Second, []Check{{Name: "serving", Checker: ok}, {Name: "postgres", Checker: fails(secret), Optional: true}})
	if !r.Ready() || r.Err() != nil {
		t.Errorf("only an optional dependency failing: Ready %v, Err %v; want ready", r.Ready(), r.Err())
	}
	if r := Run(t.Context(), time.Second, nil); !r.Ready() || r.String() != "ready" {
		t.Errorf("no checks: %v %q", r.Ready(), r.String())
	}
}

// TestRunTimeout: a check that hangs, even one that ignores its context,
// fails as "timed out" at the timeout and holds up nothing else.
func TestRunTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	r := Run(t.Context(), 100*time.Millisecond, []Check{
		{Name: "deaf", Checker: CheckerFunc(func(context.Context) error { <-block; return nil })},
		{Name: "slow", Checker: CheckerFunc(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })},
		{Name: "fine", Checker: ok},
	})
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v with a 100ms timeout", d)
	}
	want := "not ready\ndeaf: failing (timed out)\nslow: failing (timed out)\nfine: ok"
	if got := r.String(); got != want {
		t.Errorf("String =\n%s\nwant\n%s", got, want)
	}
}

// TestMonitorLogsTransitions: a dependency going down is logged once
// however often /readyz is polled, and so is its recovery.
func TestMonitorLogsTransitions(t *testing.T) {
	var buf strings.Builder
	m := NewMonitor(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
	var err error
	m.Add(Check{Name: "s3", Checker: CheckerFunc(func(context.Context) error { return err })})
	for range 3 {
		m.Check(t.Context())
	}
	if buf.Len() != 0 {
		t.Errorf("logged while healthy: %s", buf.String())
	}
	err = errors.New("connection refused")
	for range 3 {
		if m.Check(t.Context()).Ready() {
			t.Fatal("ready with s3 failing")
		}
	}
	err = nil
	for range 3 {
		m.Check(t.Context())
	}
	log := buf.String()
	if strings.Count(log, "dependency not ready") != 1 || strings.Count(log, "dependency ready again") != 1 || !strings.Contains(log, "connection refused") {
		t.Errorf("log after down x3, up x3:\n%s\nwant one line each way, with the error", log)
	}
}

func TestMonitorDuplicate(t *testing.T) {
	m := NewMonitor(slog.New(slog.DiscardHandler), 0)
	m.Add(Check{Name: "s3", Checker: ok})
	defer func() {
		if recover() == nil {
			t.Error("adding s3 twice did not panic")
		}
	}()
	m.Add(Check{Name: "s3", Checker: ok})
}
