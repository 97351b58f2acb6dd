// Package health decides whether a replica should get traffic: it runs the
// readiness check of every dependency the replica needs (the object store,
// the database, what it loads at start) and reports each one by name, so
// that a load balancer polling /readyz stops sending work to a replica
// that cannot serve it, and an operator reading /readyz sees why.
//
// A dependency is a [Check]: a name, a [Checker] and whether it is
// required. A required dependency that fails makes the replica unready; an
// optional one is reported ("degraded") but the replica keeps serving
// what it can without it: PostgreSQL being down, for example, must not
// take every replica of a cluster out of the balancer at once while
// cached files can still be served.
//
// Checks run concurrently, each under a timeout, so one hung dependency
// cannot hold /readyz past the balancer's own check timeout.
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultTimeout bounds one run of all checks: below HAProxy's default
// check timeout, so a hung dependency reads as "unready", not as a
// replica that does not answer.
const DefaultTimeout = 2 * time.Second

// A Checker reports whether a dependency can be used now. Ready returns nil
// when it can; otherwise an error saying why (it is logged, not shown to
// clients). It must return promptly once ctx is done and be safe for
// concurrent use.
type Checker interface {
	Ready(ctx context.Context) error
}

// CheckerFunc adapts a function to a Checker.
type CheckerFunc func(ctx context.Context) error

// Ready calls f.
func (f CheckerFunc) Ready(ctx context.Context) error { return f(ctx) }

// A Check is one dependency of the replica.
type Check struct {
	// Name is what /readyz and the log call it: "s3", "postgres".
	// Lower case, no spaces.
	Name string
	// Checker says whether the dependency can be used now.
	Checker Checker
	// Optional: a failure is reported as degraded, and does not make the
	// replica unready.
	Optional bool
}

// A State is the outcome of one check.
type State string

const (
	OK       State = "ok"
	Failing  State = "failing"  // a required dependency: the replica is unready
	Degraded State = "degraded" // an optional dependency: still serving
)

// A Result is one check's outcome.
type Result struct {
	Name  string
	State State
	// Reason is a short public explanation when the state is not OK, for
	// the body of /readyz; Err is the full error, for the log.
	Reason string
	Err    error
}

// A Report is the outcome of one run of every check, in the order they
// were registered.
type Report struct {
	Results []Result
}

// Ready reports whether no required dependency failed.
func (r Report) Ready() bool {
	for _, res := range r.Results {
		if res.State == Failing {
			return false
		}
	}
	return true
}

// Err is nil when r is ready, else an error naming every failing required
// dependency (for errors.Is: it wraps ErrUnready).
func (r Report) Err() error {
	var names []string
	for _, res := range r.Results {
		if res.State == Failing {
			names = append(names, res.Name+": "+res.Reason)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnready, strings.Join(names, "; "))
}

// ErrUnready is what Report.Err wraps.
var ErrUnready = errors.New("not ready")

// String is "ready" or "not ready", then one line per dependency, "name:
// state" and, when it is not ok, the reason: a body both people and
// scripts can read.
func (r Report) String() string {
	var b strings.Builder
	if r.Ready() {
		b.WriteString("ready\n")
	} else {
		b.WriteString("not ready\n")
	}
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%s: %s", res.Name, res.State)
		if res.State != OK && res.Reason != "" {
			fmt.Fprintf(&b, " (%s)", res.Reason)
		}
		b.WriteByte('\n')
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// A Public error carries the reason /readyz shows for a failing check; any
// other error shows only "unavailable", so that a DSN, a host name or a
// path in an error from a driver is logged, never published.
type Public struct {
	Reason string
	Err    error
}

func (e *Public) Error() string {
	if e.Err == nil {
		return e.Reason
	}
	return e.Reason + ": " + e.Err.Error()
}
func (e *Public) Unwrap() error { return e.Err }

// Reasonf returns an error whose reason /readyz may show (see Public).
func Reasonf(err error, format string, args ...any) error {
	return &Public{Reason: fmt.Sprintf(format, args...), Err: err}
}

// Run runs every check concurrently under timeout (DefaultTimeout when
// zero) and returns their results in order. A check still running at the
// timeout fails with "timed out".
func Run(ctx context.Context, timeout time.Duration, checks []Check) Report {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	results := make([]Result, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		results[i].Name = c.Name
		done := make(chan error, 1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			select {
			case err = <-done:
			case <-ctx.Done():
				err = fmt.Errorf("timed out after %v: %w", timeout, ctx.Err())
			}
			results[i] = result(c, err)
		}()
		// The checker itself runs apart, so that one ignoring ctx delays
		// nothing but its own goroutine.
		go func() { done <- c.Checker.Ready(ctx) }()
	}
	wg.Wait()
	return Report{Results: results}
}

func result(c Check, err error) Result {
	res := Result{Name: c.Name, State: OK}
	if err == nil {
		return res
	}
	res.Err = err
	res.State = Failing
	if c.Optional {
		res.State = Degraded
	}
	var pub *Public
	switch {
	case errors.As(err, &pub):
		res.Reason = pub.Reason
	case errors.Is(err, context.DeadlineExceeded):
		res.Reason = "timed out"
	default:
		res.Reason = "unavailable"
	}
	return res
}

// A Monitor runs the checks for /readyz and logs each dependency's
// transitions (ok -> failing and back) once, not on every poll.
type Monitor struct {
	log     *slog.Logger
	timeout time.Duration

	mu     sync.Mutex
	checks []Check
	last   map[string]State
}

// NewMonitor returns a Monitor with no checks; timeout bounds each run
// (DefaultTimeout when zero).
func NewMonitor(log *slog.Logger, timeout time.Duration) *Monitor {
	return &Monitor{log: log, timeout: timeout, last: map[string]State{}}
}

// Add registers a dependency. Names must be unique; Add panics on a
// duplicate, which is a wiring mistake.
func (m *Monitor) Add(c Check) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, have := range m.checks {
		if have.Name == c.Name {
			panic("health: duplicate check " + c.Name)
		}
	}
	m.checks = append(m.checks, c)
}

// Check runs every registered check and returns the report, logging the
// dependencies whose state changed since the previous run.
func (m *Monitor) Check(ctx context.Context) Report {
	m.mu.Lock()
	checks := append([]Check(nil), m.checks...)
	m.mu.Unlock()
	r := Run(ctx, m.timeout, checks)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, res := range r.Results {
		prev, seen := m.last[res.Name]
		m.last[res.Name] = res.State
		if prev == res.State || (!seen && res.State == OK) {
			continue
		}
		if res.State == OK {
			m.log.Info("dependency ready again", "dependency", res.Name, "was", string(prev))
		} else {
			m.log.Warn("dependency not ready", "dependency", res.Name, "state", string(res.State), "err", res.Err)
		}
	}
	return r
}
