package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"
)

// A TokenStore keeps the token records in place of {data_dir}/auth/
// tokens.json: a database that replicas share (package state/postgres).
// Every Authenticate asks it, so a token revoked through one replica is
// refused by every replica at its next request.
//
// Implementations must be safe for concurrent use by several processes.
type TokenStore interface {
	// Get returns the record with id; an error matching fs.ErrNotExist
	// when there is none.
	Get(ctx context.Context, id string) (TokenRecord, error)
	// List returns every record, in any order.
	List(ctx context.Context) ([]TokenRecord, error)
	// Insert adds rec. A record with the same name or id already stored
	// is an error matching ErrNameTaken, and nothing changes.
	Insert(ctx context.Context, rec TokenRecord) error
	// Delete removes the record whose id, or else whose name, is
	// idOrName, and returns it; an error matching fs.ErrNotExist when
	// there is none.
	Delete(ctx context.Context, idOrName string) (TokenRecord, error)
}

// ErrNameTaken is TokenStore.Insert's error for a name (or id) in use.
var ErrNameTaken = errors.New("token name taken")

// A TokenRecord is a token as stored: its description and the hash of
// its secret (never the secret).
type TokenRecord struct {
	Token
	SecretHash string // hex SHA-256, see hashSecret
}

// storeTimeout bounds one TokenStore operation, so that a database that
// does not answer fails a request instead of holding it.
const storeTimeout = 5 * time.Second

func (t *Tokens) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), storeTimeout)
}

// authenticateStore is Authenticate with a TokenStore. When the store
// cannot be read, the copy of the token from its last successful read is
// used: a revocation goes through the same store, so none can have
// happened unseen while it is unreachable from everywhere.
func (t *Tokens) authenticateStore(id, secret string) (Token, error) {
	ctx, cancel := t.storeCtx()
	defer cancel()
	rec, err := t.store.Get(ctx, id)
	found := err == nil
	switch {
	case err == nil:
		t.mu.Lock()
		t.records[id] = record{Token: rec.Token, Hash: rec.SecretHash}
		t.mu.Unlock()
	case errors.Is(err, fs.ErrNotExist):
		t.mu.Lock()
		delete(t.records, id)
		t.mu.Unlock()
	default:
		t.mu.Lock()
		cached, ok := t.records[id]
		t.mu.Unlock()
		if !ok {
			return Token{}, fmt.Errorf("reading tokens: %w", err)
		}
		rec, found = TokenRecord{Token: cached.Token, SecretHash: cached.Hash}, true
	}
	got := hashSecret(id, secret)
	want := rec.SecretHash
	if !found {
		want = strings.Repeat("0", len(got))
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !found {
		return Token{}, fmt.Errorf("unknown or revoked token: %w", ErrInvalidToken)
	}
	tok := record{Token: rec.Token}.cloneToken()
	if now := t.now(); tok.Expired(now) {
		return tok, fmt.Errorf("token %q expired at %s: %w", tok.Name, tok.Expires.UTC().Format(time.RFC3339), ErrTokenExpired)
	}
	return tok, nil
}

func (t *Tokens) listStore() ([]Token, error) {
	ctx, cancel := t.storeCtx()
	defer cancel()
	recs, err := t.store.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading tokens: %w", err)
	}
	out := make([]Token, 0, len(recs))
	for _, r := range recs {
		out = append(out, record{Token: r.Token}.cloneToken())
	}
	return out, nil
}

func (t *Tokens) insertStore(rec record) error {
	ctx, cancel := t.storeCtx()
	defer cancel()
	err := t.store.Insert(ctx, TokenRecord{Token: rec.Token, SecretHash: rec.Hash})
	if errors.Is(err, ErrNameTaken) {
		return badArg("a token named %q already exists; revoke it or choose another name", rec.Name)
	}
	return err
}

func (t *Tokens) deleteStore(idOrName string) (Token, error) {
	ctx, cancel := t.storeCtx()
	defer cancel()
	rec, err := t.store.Delete(ctx, idOrName)
	if errors.Is(err, fs.ErrNotExist) {
		return Token{}, fmt.Errorf("no token with id or name %q: %w", idOrName, fs.ErrNotExist)
	}
	if err != nil {
		return Token{}, err
	}
	t.mu.Lock()
	delete(t.records, rec.ID)
	t.mu.Unlock()
	tok := rec.Token
	tok.Scopes = slices.Clone(tok.Scopes)
	return tok, nil
}
