package git

import (
	"strings"
	"testing"
	"time"
)

// TestGitRunsInTheCLocale checks that git runs with LC_ALL=C whatever the
// operator's locale: remoteError classifies git's and ssh's standard error
// by its English text, which a translated message would slip past.
func TestGitRunsInTheCLocale(t *testing.T) {
	t.Setenv("LC_ALL", "de_DE.UTF-8")
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("LANGUAGE", "de")
	r := &runner{limit: NewLimiter(1), timeout: time.Minute, env: baseEnv(Credentials{}, nil)}
	// A shell alias prints the environment git gives its children, which
	// is the one it runs with itself.
	out, err := r.run(t.Context(), cmd{args: []string{"-c", "alias.env-dump=!env", "env-dump"}})
	if err != nil {
		t.Fatal(err)
	}
	var lcAll []string
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "LC_ALL="); ok {
			lcAll = append(lcAll, v)
		}
		if strings.HasPrefix(line, "LANGUAGE=") {
			t.Errorf("git runs with %s; want no LANGUAGE", line)
		}
	}
	if len(lcAll) != 1 || lcAll[0] != "C" {
		t.Errorf("git runs with LC_ALL=%q, want exactly C", lcAll)
	}
}
