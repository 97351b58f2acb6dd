package git

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/upstream"
)

// A Report is what Test found, for `modgate source test NAME`.
type Report struct {
	Source string
	Module string // the module path the repository was derived from
	Repo   string // the repository URL (credentials redacted)
	Checks []Check
}

// A Check is one step of a Test, in plain words.
type Check struct {
	Name   string // "repository", "server", "credentials", "refs"
	OK     bool
	Detail string // what was seen, or what is wrong and what to do
}

// OK reports whether every check passed.
func (r Report) OK() bool {
	for _, c := range r.Checks {
		if !c.OK {
			return false
		}
	}
	return len(r.Checks) > 0
}

// String prints the report, one check a line.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %q", r.Source)
	if r.Module != "" {
		fmt.Fprintf(&b, ", module %s", r.Module)
	}
	if r.Repo != "" {
		fmt.Fprintf(&b, ", repository %s", r.Repo)
	}
	b.WriteString("\n")
	for _, c := range r.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %-11s %s\n", mark, c.Name, c.Detail)
	}
	return b.String()
}

// Test checks the source with one repository: that it can be located, that
// the server answers, that it accepts the credentials, and that it lists
// refs (one ls-remote, nothing fetched). modulePath names the repository;
// "" means the first pattern without wildcards. Problems are reported in
// the Report; the error is non-nil only when there is nothing to test
// (modulePath is empty and every pattern has wildcards, or the source does
// not match it).
func (s *Source) Test(ctx context.Context, modulePath string) (Report, error) {
	rep := Report{Source: s.cfg.Name}
	if modulePath == "" {
		for _, p := range s.cfg.Patterns {
			if !strings.ContainsAny(p, "*?[\\") {
				modulePath = strings.Trim(p, "/")
				break
			}
		}
		if modulePath == "" {
			return rep, fmt.Errorf("git source %q: every pattern has wildcards: name a module path to test", s.cfg.Name)
		}
	}
	if !s.Matches(modulePath) {
		return rep, fmt.Errorf("git source %q: module path %s is not matched by the source's patterns", s.cfg.Name, modulePath)
	}
	rep.Module = modulePath
	start := time.Now()
	loc, err := s.locate(ctx, modulePath)
	if err != nil {
		rep.Checks = append(rep.Checks, Check{Name: "repository", Detail: "cannot locate the repository: " + explain(err)})
		return rep, nil
	}
	rep.Repo = redactURL(loc.url)
	rep.Checks = append(rep.Checks, Check{Name: "repository", OK: true, Detail: "repository root " + loc.root})

	r := s.repoFor(loc.url)
	r.forget()
	refs, err := r.loadRefs(ctx)
	switch {
	case err == nil:
	case errors.Is(err, ErrAuthentication):
		rep.Checks = append(rep.Checks,
			Check{Name: "server", OK: true, Detail: "answered"},
			Check{Name: "credentials", Detail: explain(err) + ": check the username and the token's permissions (read access to the repository)"})
		return rep, nil
	case errors.Is(err, fs.ErrNotExist):
		rep.Checks = append(rep.Checks,
			Check{Name: "server", OK: true, Detail: "answered"},
			Check{Name: "refs", Detail: explain(err) + ": check the URL template and the module path (some servers also answer 404 when the credentials may not read the repository)"})
		return rep, nil
	default:
		rep.Checks = append(rep.Checks, Check{Name: "server", Detail: "unreachable or failing: " + explain(err)})
		return rep, nil
	}
	cred := "no credentials configured; the server allowed anonymous access"
	if s.cfg.Credentials.Password != "" || s.cfg.Credentials.SSHKeyFile != "" {
		cred = "accepted"
	}
	tags, heads := 0, 0
	for name := range refs {
		switch {
		case strings.HasPrefix(name, "refs/tags/"):
			tags++
		case strings.HasPrefix(name, "refs/heads/"):
			heads++
		}
	}
	detail := fmt.Sprintf("%d branches, %d tags in %v", heads, tags, time.Since(start).Round(time.Millisecond))
	if refs["HEAD"] == "" {
		detail += "; no default branch (empty repository?)"
	}
	rep.Checks = append(rep.Checks,
		Check{Name: "server", OK: true, Detail: "answered"},
		Check{Name: "credentials", OK: true, Detail: cred},
		Check{Name: "refs", OK: true, Detail: detail})
	return rep, nil
}

// explain is err's message with its class in plain words.
func explain(err error) string {
	switch {
	case errors.Is(err, upstream.ErrTimeout):
		return err.Error() + " (timed out)"
	default:
		return err.Error()
	}
}
