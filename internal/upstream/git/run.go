package git

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

// A Limiter bounds how many git processes run at once. Sources built from
// one configuration share one Limiter, so that many slow repositories
// cannot start an unbounded number of processes between them.
type Limiter struct{ slots chan struct{} }

// DefaultMaxConcurrent is the size of the Limiter New creates when a Config
// has neither a Limiter nor MaxConcurrent.
const DefaultMaxConcurrent = 4

// NewLimiter returns a Limiter admitting n processes at once (n < 1 means
// DefaultMaxConcurrent).
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = DefaultMaxConcurrent
	}
	return &Limiter{slots: make(chan struct{}, n)}
}

// acquire waits for a slot or for ctx to end.
func (l *Limiter) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// A GitError reports that a git command failed. It keeps the command, its
// exit status and the end of what it wrote to standard error (credentials
// redacted). It matches upstream.ErrTimeout when the command was stopped by
// its deadline and upstream.ErrUnavailable otherwise.
type GitError struct {
	Args     []string // the arguments after "git"
	ExitCode int      // -1 when the command did not exit normally
	Stderr   string   // trimmed and redacted
	Err      error    // the *exec.ExitError or the reason it did not run
	timedOut bool
}

func (e *GitError) Error() string {
	msg := "git " + strings.Join(e.Args, " ") + ": " + e.Err.Error()
	if e.timedOut {
		msg += " (timed out)"
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Unwrap returns the class (upstream.ErrTimeout or upstream.ErrUnavailable)
// and the cause.
func (e *GitError) Unwrap() []error {
	class := upstream.ErrUnavailable
	if e.timedOut {
		class = upstream.ErrTimeout
	}
	return []error{class, e.Err}
}

// maxStderr bounds the standard error kept in a GitError.
const maxStderr = 512

// runner starts git processes for one source: with the source's
// environment (credentials, no prompts), the shared Limiter and a timeout.
type runner struct {
	limit   *Limiter
	timeout time.Duration
	env     []string // base environment, without credentials
	secrets []string // strings redacted from stderr
}

// A cmd is one git invocation.
type cmd struct {
	dir    string    // GIT_DIR, "" for none
	env    []string  // added to the runner's environment (credentials)
	stdin  io.Reader // nil for none
	stdout io.Writer // nil to collect into the result
	args   []string
}

// run runs git with c.args and returns its standard output (unless
// c.stdout was given). A non-zero exit is a *GitError; so is a failure to
// start. The caller's context ending is returned as the context's error
// wrapped in a *GitError.
func (r *runner) run(ctx context.Context, c cmd) ([]byte, error) {
	release, err := r.limit.acquire(ctx)
	if err != nil {
		return nil, &GitError{Args: c.args, ExitCode: -1, Err: fmt.Errorf("waiting for a git slot: %w", err),
			timedOut: errors.Is(err, context.DeadlineExceeded)}
	}
	defer release()

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	x := exec.CommandContext(ctx, "git", c.args...)
	x.Env = append(append([]string(nil), r.env...), c.env...)
	if c.dir != "" {
		x.Env = append(x.Env, "GIT_DIR="+c.dir)
		x.Dir = c.dir
	}
	setProcessGroup(x)
	x.WaitDelay = 5 * time.Second // don't hang on pipes held open by git's children
	var stdout, stderr bytes.Buffer
	x.Stdin = c.stdin
	x.Stdout = &stdout
	if c.stdout != nil {
		x.Stdout = c.stdout
	}
	x.Stderr = &limitedBuffer{max: 64 << 10, buf: &stderr}
	if err := x.Run(); err != nil {
		ge := &GitError{Args: c.args, ExitCode: -1, Err: err, Stderr: r.trim(stderr.String())}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ge.ExitCode = ee.ExitCode()
		}
		if ctx.Err() != nil {
			ge.timedOut = errors.Is(ctx.Err(), context.DeadlineExceeded)
			ge.Err = fmt.Errorf("%w: %w", err, ctx.Err())
		}
		return nil, ge
	}
	return stdout.Bytes(), nil
}

// trim keeps the last lines of stderr, redacted, on one line.
func (r *runner) trim(s string) string {
	s = r.redact(strings.TrimSpace(s))
	if len(s) > maxStderr {
		s = "..." + s[len(s)-maxStderr:]
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}

// redact hides the source's secrets in s.
func (r *runner) redact(s string) string {
	for _, secret := range r.secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, "xxxxx")
		}
	}
	return s
}

// limitedBuffer keeps the first max bytes written to it and drops the rest.
type limitedBuffer struct {
	max int
	buf *bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// baseEnv returns the environment of every git process of a source: the
// process environment without any GIT_* variable (a GIT_DIR inherited from
// a hook would point git elsewhere), no system or global configuration (an
// operator's credential helpers and insteadOf rules must not apply), never
// a prompt, messages in the C locale (GitError's stderr is read by
// classifiers such as notFoundStderr, which a translated message would
// slip past), and extra last.
func baseEnv(cred Credentials, extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "SSH_ASKPASS=") ||
			strings.HasPrefix(kv, "LC_ALL=") || strings.HasPrefix(kv, "LANGUAGE=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env,
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=", // set but empty: git neither runs a helper nor falls back to core.askPass
		"SSH_ASKPASS=",
		"GCM_INTERACTIVE=never",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"LC_ALL=C",
	)
	return append(append(env, "GIT_SSH_COMMAND="+sshCommand(cred)), extra...)
}

// sshCommand is the ssh command line git runs for ssh repositories: never
// a prompt (BatchMode), only the configured key, and the configured
// known_hosts file with strict checking.
func sshCommand(cred Credentials) string {
	ssh := "ssh -o BatchMode=yes -o StrictHostKeyChecking=yes"
	if cred.SSHKeyFile != "" {
		ssh += " -i " + shellQuote(cred.SSHKeyFile) + " -o IdentitiesOnly=yes"
	}
	if cred.SSHKnownHostsFile != "" {
		ssh += " -o UserKnownHostsFile=" + shellQuote(cred.SSHKnownHostsFile) + " -o GlobalKnownHostsFile=/dev/null"
	}
	return ssh
}

// authEnv returns the environment that makes git send HTTP Basic
// credentials to urlPrefix (scheme://host/) and to nothing else, through
// GIT_CONFIG_* so that they never appear on a command line. Credential
// helpers are reset for every URL, so git never asks anyone.
func authEnv(urlPrefix string, cred Credentials) []string {
	env := []string{"GIT_CONFIG_KEY_0=credential.helper", "GIT_CONFIG_VALUE_0="}
	if cred.Password == "" || urlPrefix == "" {
		return append(env, "GIT_CONFIG_COUNT=1")
	}
	return append(env,
		"GIT_CONFIG_KEY_1=http."+urlPrefix+".extraHeader",
		"GIT_CONFIG_VALUE_1=Authorization: Basic "+basicToken(cred),
		"GIT_CONFIG_COUNT=2",
	)
}

// basicToken is the base64 user:password of an Authorization: Basic header.
func basicToken(cred Credentials) string {
	return base64.StdEncoding.EncodeToString([]byte(cred.username() + ":" + cred.Password))
}

// shellQuote quotes s for the shell that runs GIT_SSH_COMMAND.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
