package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/ledger"
	"github.com/modgate/modgate/internal/state/postgres"
	"github.com/modgate/modgate/internal/testenv"
)

// TestRestart stops PostgreSQL under open DBs and starts it again: while
// it is down, operations fail with errors matching ErrUnavailable (or,
// for a token that authenticated before, use the last copy); once it is
// back, the same DB values work again without being reopened, and a
// listener that lost its connection reconnects and tells its handler to
// re-read everything.
func TestRestart(t *testing.T) {
	pg := testenv.NewPostgres(t)
	dsn := pg.DSN(t)
	db := open(t, dsn)
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.OpenTokens("", auth.TokensOptions{Store: db.Tokens()})
	if err != nil {
		t.Fatal(err)
	}
	scopes, _ := auth.ParseScopes([]string{"read"})
	text, _, err := tokens.Create("ci", scopes, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.Authenticate(text); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		db.Listen(ctx, []string{postgres.ChannelTokens}, func(ch, payload string) {
			mu.Lock()
			got = append(got, ch+":"+payload)
			mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The first notification proves the listener is up.
	waitFor(t, func() bool {
		db.Notify(t.Context(), postgres.ChannelTokens, "ping")
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})

	pg.Stop(t)
	l, err := ledger.Open(ledger.Config{Patterns: []string{"corp.example.com"}, Backend: db.Ledger()})
	if err != nil {
		t.Fatal(err)
	}
	err = l.CheckMod(t.Context(), "corp.example.com/x", "v1.0.0", []byte("module corp.example.com/x\n"))
	if !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("ledger check while PostgreSQL is down = %v, want ErrUnavailable", err)
	}
	if _, err := tokens.Authenticate(text); err != nil {
		t.Errorf("Authenticate of a known token while PostgreSQL is down = %v, want the last copy used", err)
	}
	unseen := "mgt_" + strings.Repeat("1", 16) + "_" + strings.Repeat("2", 64)
	if _, err := tokens.Authenticate(unseen); !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("Authenticate of a token never seen while PostgreSQL is down = %v, want ErrUnavailable (503), not 401", err)
	}
	if _, _, err := tokens.Create("other", scopes, time.Time{}); !errors.Is(err, postgres.ErrUnavailable) {
		t.Errorf("Create while PostgreSQL is down = %v, want ErrUnavailable", err)
	}

	pg.Start(t)
	// Same DB, no reopen: the pool reconnects.
	waitFor(t, func() bool { return db.Ping(t.Context()) == nil })
	if err := l.CheckMod(t.Context(), "corp.example.com/x", "v1.0.0", []byte("module corp.example.com/x\n")); err != nil {
		t.Errorf("ledger check after restart = %v", err)
	}
	if _, err := tokens.Revoke("ci"); err != nil {
		t.Fatalf("Revoke after restart: %v", err)
	}
	if _, err := tokens.Authenticate(text); !errors.Is(err, auth.ErrInvalidToken) {
		t.Errorf("Authenticate after revoke = %v, want ErrInvalidToken", err)
	}
	// The listener came back and asked for a full re-read.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, g := range got {
			if g == postgres.ChannelTokens+":" {
				return true
			}
		}
		return false
	})
}

// waitFor polls cond for up to 20 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
