// Package authtest is the conformance suite of the token stores: the
// tokens file and every auth.TokenStore (PostgreSQL) behave the same
// through auth.Tokens.
package authtest

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/auth"
)

// RunTokens runs the suite. open returns a new Tokens over an empty
// store; open2, when not nil, returns another Tokens over the same store
// (another process or replica).
func RunTokens(t *testing.T, open func(t *testing.T) (a, b *auth.Tokens)) {
	scopes, err := auth.ParseScopes([]string{"read:corp.example.com/*", "publish:corp.example.com/team"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("CreateAuthenticateRevoke", func(t *testing.T) {
		a, b := open(t)
		text, tok, err := a.Create("ci", scopes, time.Time{})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		for name, tk := range map[string]*auth.Tokens{"same": a, "other": b} {
			got, err := tk.Authenticate(text)
			if err != nil || got.ID != tok.ID || got.Name != "ci" || auth.FormatScopes(got.Scopes) != auth.FormatScopes(scopes) || !got.Created.Equal(tok.Created) {
				t.Errorf("Authenticate through the %s process = %+v, %v; want %+v", name, got, err, tok)
			}
		}
		// A wrong secret for a real id.
		wrong := text[:len(text)-1] + map[bool]string{true: "0", false: "1"}[text[len(text)-1] != '0']
		if _, err := b.Authenticate(wrong); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("Authenticate with a wrong secret = %v, want ErrInvalidToken", err)
		}
		list, err := b.List()
		if err != nil || len(list) != 1 || list[0].ID != tok.ID {
			t.Errorf("List = %+v, %v; want the one token", list, err)
		}
		if _, err := a.Revoke("ci"); err != nil {
			t.Fatalf("Revoke by name: %v", err)
		}
		// Revoked through one process, refused by the other at once.
		if _, err := b.Authenticate(text); !errors.Is(err, auth.ErrInvalidToken) {
			t.Errorf("Authenticate of a revoked token through the other process = %v, want ErrInvalidToken", err)
		}
		if _, err := a.Revoke(tok.ID); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Revoke twice = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("NamesAreUnique", func(t *testing.T) {
		a, b := open(t)
		if _, _, err := a.Create("deploy", scopes, time.Time{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b.Create("deploy", scopes, time.Time{}); !errors.Is(err, auth.ErrInvalidArgument) {
			t.Errorf("Create of a taken name through the other process = %v, want ErrInvalidArgument", err)
		}
		_, tok, err := b.Create("deploy-2", scopes, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		// Revoke takes an id too.
		if got, err := a.Revoke(tok.ID); err != nil || got.Name != "deploy-2" {
			t.Errorf("Revoke by id = %+v, %v", got, err)
		}
	})

	t.Run("Expiry", func(t *testing.T) {
		a, b := open(t)
		text, _, err := a.Create("short", scopes, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Authenticate(text)
		if err != nil || got.Expires.IsZero() {
			t.Fatalf("Authenticate = %+v, %v; want the token with its expiry", got, err)
		}
		if !got.Expired(time.Now().Add(2 * time.Hour)) {
			t.Errorf("token expiring in an hour is not expired in two")
		}
	})
}
