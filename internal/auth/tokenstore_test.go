package auth_test

import (
	"testing"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/auth/authtest"
)

// TestTokensFileConformance runs the token store suite against the
// tokens file, opened twice as two processes would.
func TestTokensFileConformance(t *testing.T) {
	authtest.RunTokens(t, func(t *testing.T) (*auth.Tokens, *auth.Tokens) {
		dir := t.TempDir()
		a, err := auth.OpenTokens(dir, auth.TokensOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.OpenTokens(dir, auth.TokensOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}
