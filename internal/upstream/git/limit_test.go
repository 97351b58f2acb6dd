package git

import (
	"testing"

	"github.com/modgate/modgate/internal/config"
)

// TestDefaultMaxConcurrentMatchesConfig keeps what --print-config shows
// for private.max_concurrent_git 0 equal to what NewLimiter applies.
func TestDefaultMaxConcurrentMatchesConfig(t *testing.T) {
	if config.DefaultMaxConcurrentGit != DefaultMaxConcurrent {
		t.Errorf("config.DefaultMaxConcurrentGit = %d, git.DefaultMaxConcurrent = %d; want them equal", config.DefaultMaxConcurrentGit, DefaultMaxConcurrent)
	}
}
