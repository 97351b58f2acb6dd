package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// postgresBinDir is where Debian's postgresql-15 package installs initdb
// and pg_ctl (they are not on PATH there).
const postgresBinDir = "/usr/lib/postgresql/15/bin"

// A Postgres is a throwaway PostgreSQL 15 cluster started by a test: its
// own data directory under a temporary directory, listening on 127.0.0.1
// on a free port, with fsync off (the data is thrown away) and trust
// authentication for the superuser "postgres".
//
// NewPostgres starts a private one that a test may Stop and Start (to see
// what modgate does while the database is down); PostgresDSN shares one
// cluster between all tests of a process.
type Postgres struct {
	port    int
	dir     string // owned by the postgres user when running as root
	asUser  string // "postgres" when running as root, "" otherwise
	mu      sync.Mutex
	running bool
	dbSeq   atomic.Int64
}

// NewPostgres starts a private PostgreSQL cluster for this test and
// stops it (and removes its files) when the test ends. It skips the test,
// or fails it under MODGATE_REQUIRE_SERVERS=1, when PostgreSQL 15 is not
// installed (Debian's postgresql-15).
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	p, err := startPostgres()
	if err != nil {
		if isMissing(err) {
			Unavailable(t, "%v", err)
		}
		t.Fatalf("%v", err)
	}
	t.Cleanup(p.remove)
	return p
}

// DSN returns the connection string of a fresh, empty database in the
// cluster, created for this call: tests sharing a cluster never see each
// other's tables.
func (p *Postgres) DSN(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d_%d", os.Getpid(), p.dbSeq.Add(1))
	if out, err := p.psql("postgres", "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testenv: creating database %s: %v\n%s", name, err, out)
	}
	return p.dsnFor(name)
}

// dsnFor returns the URL-form DSN of database name.
func (p *Postgres) dsnFor(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)), Path: "/" + name,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// Addr is the cluster's 127.0.0.1:port.
func (p *Postgres) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

// Stop stops the cluster (fast shutdown: open connections are closed).
// Its databases are kept for Start.
func (p *Postgres) Stop(t testing.TB) {
	t.Helper()
	if err := p.stop(); err != nil {
		t.Fatalf("%v", err)
	}
}

// Start starts a stopped cluster again, on the same port.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	if err := p.start(); err != nil {
		t.Fatalf("%v", err)
	}
}

var shared struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// PostgresDSN returns the DSN of a fresh database in the one PostgreSQL
// cluster this test process shares (started at the first call). Call
// StopPostgres from TestMain after m.Run to stop it; a process that does
// not leaves a cluster behind in a temporary directory. It skips the test,
// or fails it under MODGATE_REQUIRE_SERVERS=1, when PostgreSQL 15 is not
// installed.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	shared.once.Do(func() { shared.pg, shared.err = startPostgres() })
	if shared.err != nil {
		if isMissing(shared.err) {
			Unavailable(t, "%v", shared.err)
		}
		t.Fatalf("%v", shared.err)
	}
	return shared.pg.DSN(t)
}

// StopPostgres stops the cluster PostgresDSN started, if any, and
// removes its files. TestMain calls it after m.Run.
func StopPostgres() {
	if shared.pg != nil {
		shared.pg.remove()
	}
}

// errPostgresMissing marks a cluster that could not start because
// PostgreSQL is not installed.
type errPostgresMissing struct{ err error }

func (e errPostgresMissing) Error() string {
	return fmt.Sprintf("testenv: no PostgreSQL 15 at %s (install Debian's postgresql-15): %v", postgresBinDir, e.err)
}

func isMissing(err error) bool {
	_, ok := err.(errPostgresMissing)
	return ok
}

// startPostgres creates and starts a cluster.
func startPostgres() (*Postgres, error) {
	initdb := filepath.Join(postgresBinDir, "initdb")
	if _, err := os.Stat(initdb); err != nil {
		return nil, errPostgresMissing{err}
	}
	dir, err := os.MkdirTemp("", "modgate-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %v", err)
	}
	p := &Postgres{dir: dir}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: the cluster belongs to the
		// postgres user, as Debian's package sets it up.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, errPostgresMissing{err}
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("testenv: %v", err)
		}
		p.asUser = "postgres"
	}
	if out, err := p.run(initdb, "-D", p.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("testenv: initdb: %v\n%s", err, out)
	}
	for attempt := 1; ; attempt++ {
		p.port = freePortErr()
		if err = p.start(); err == nil {
			return p, nil
		}
		if attempt == 3 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

func (p *Postgres) dataDir() string { return filepath.Join(p.dir, "data") }

// run runs a PostgreSQL program, as the postgres user when the test runs
// as root.
func (p *Postgres) run(prog string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if p.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", p.asUser, "--", prog}, args...)...)
	} else {
		cmd = exec.Command(prog, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

func (p *Postgres) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return nil
	}
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-c port=" + strconv.Itoa(p.port),
		"-c unix_socket_directories=" + p.dir,
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
		"-c max_connections=200",
	}, " ")
	out, err := p.run(filepath.Join(postgresBinDir, "pg_ctl"), "-D", p.dataDir(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "30", "-o", opts, "start")
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		return fmt.Errorf("testenv: starting PostgreSQL on port %d: %v\n%s\n%s", p.port, err, out, log)
	}
	// pg_ctl -w waits for the server to accept connections; make sure
	// the TCP listener is there too.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testenv: PostgreSQL does not listen on %s: %v", p.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.running = true
	return nil
}

func (p *Postgres) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.running {
		return nil
	}
	if out, err := p.run(filepath.Join(postgresBinDir, "pg_ctl"), "-D", p.dataDir(), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("testenv: stopping PostgreSQL: %v\n%s", err, out)
	}
	p.running = false
	return nil
}

// remove stops the cluster and deletes its files.
func (p *Postgres) remove() {
	p.stop()
	os.RemoveAll(p.dir)
}

// psql runs one SQL command as the superuser in database db, over the
// cluster's unix socket.
func (p *Postgres) psql(db, sql string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", p.dir, "-p", strconv.Itoa(p.port), "-U", "postgres", "-d", db, "-c", sql}
	var cmd *exec.Cmd
	prog := filepath.Join(postgresBinDir, "psql")
	if p.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", p.asUser, "--", prog}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, prog, args...)
	}
	cmd.Dir = p.dir
	return cmd.CombinedOutput()
}

// freePortErr returns a TCP port on 127.0.0.1 that was free a moment
// ago, or 0 (which makes the start fail) when none can be had.
func freePortErr() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
