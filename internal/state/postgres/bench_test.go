package postgres_test

import (
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// benchDB opens a fresh, migrated database for a benchmark.
func benchDB(b *testing.B) *postgres.DB {
	db, err := postgres.Open(b.Context(), testenv.PostgresDSN(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	if err := db.Migrate(b.Context()); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkAuthenticate measures what a token costs per request: the
// tokens file (a stat and a map lookup) against PostgreSQL (one indexed
// read over loopback).
func BenchmarkAuthenticate(b *testing.B) {
	scopes, _ := auth.ParseScopes([]string{"read"})
	run := func(b *testing.B, tokens *auth.Tokens) {
		text, _, err := tokens.Create("bench", scopes, time.Time{})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := tokens.Authenticate(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("file", func(b *testing.B) {
		tokens, err := auth.OpenTokens(b.TempDir(), auth.TokensOptions{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, tokens)
	})
	b.Run("postgres", func(b *testing.B) {
		db := benchDB(b)
		tokens, err := auth.OpenTokens("", auth.TokensOptions{Store: db.Tokens()})
		if err != nil {
			b.Fatal(err)
		}
		run(b, tokens)
	})
}
