package postgres_test

import (
	"testing"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/auth/authtest"
)

// TestTokensConformance runs the token store suite with two "replicas",
// each with connections of its own, on one database.
func TestTokensConformance(t *testing.T) {
	authtest.RunTokens(t, func(t *testing.T) (*auth.Tokens, *auth.Tokens) {
		dbA, dsn := migrated(t)
		dbB := open(t, dsn)
		a, err := auth.OpenTokens("", auth.TokensOptions{Store: dbA.Tokens()})
		if err != nil {
			t.Fatal(err)
		}
		b, err := auth.OpenTokens("", auth.TokensOptions{Store: dbB.Tokens()})
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	})
}
