package auth

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Errors from Tokens.Authenticate. Both mean 401 to the client.
var (
	// ErrInvalidToken: malformed, unknown, revoked, or the secret is wrong.
	ErrInvalidToken = errors.New("invalid token")
	// ErrTokenExpired: the secret is right but the token has expired.
	ErrTokenExpired = errors.New("token expired")
	// ErrInvalidArgument: Create was asked for a token it cannot make
	// (bad name, no scopes, expiry in the past, name taken). The message
	// says what to change.
	ErrInvalidArgument = errors.New("invalid argument")
)

// argError is an ErrInvalidArgument whose text is only its message.
type argError struct{ msg string }

func (e *argError) Error() string        { return e.msg }
func (e *argError) Is(target error) bool { return target == ErrInvalidArgument }

func badArg(format string, args ...any) error {
	return &argError{msg: fmt.Sprintf(format, args...)}
}

const (
	tokenPrefix  = "mgt_"
	idBytes      = 8  // 64 bits: finds the record; not secret
	secretBytes  = 32 // 256 bits: see the package doc for why SHA-256 suffices
	tokensName   = "tokens.json"
	lockName     = "tokens.lock"
	tokensFormat = 1
	maxNameLen   = 64
)

// A Token is what is known about a token besides its secret. The secret
// itself is never stored.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	// Expires is when the token stops working; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether the token has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// record is a token as stored: with the hash of its secret.
type record struct {
	Token
	Hash string `json:"sha256"` // hex of hashSecret(id, secret)
}

// tokensFile is the layout of tokens.json.
type tokensFile struct {
	Format int      `json:"format"`
	Tokens []record `json:"tokens"`
}

// Actions of a TokenChange.
const (
	ChangeCreated = "created"
	ChangeRevoked = "revoked"
)

// A TokenChange is a token created or revoked by another process (the
// token command, another replica), noticed when the file was reloaded.
type TokenChange struct {
	Action string // ChangeCreated or ChangeRevoked
	Token  Token
}

// TokensOptions configures a Tokens.
type TokensOptions struct {
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// OnChange, if set, is called once per token that another process
	// created or revoked, when the file is reloaded (on Authenticate, List,
	// Reload, or before a write), so that the server can write audit records
	// for actions taken from the command line. Changes made through this
	// Tokens value are not reported: its caller knows about them. Changes
	// made while no Tokens value had the file open are seen as one
	// difference the next time it is reloaded, never at open. It is called
	// without locks held, from the goroutine that noticed the change.
	OnChange func(TokenChange)
	// Store keeps the tokens instead of the file in dir: a database that
	// replicas share. OnChange is not called with a Store.
	Store TokenStore
}

// Tokens is the token store in one directory ({data_dir}/auth), shared by
// every process that opens it. It is safe for concurrent use.
type Tokens struct {
	dir      string
	now      func() time.Time
	onChange func(TokenChange)
	store    TokenStore // nil: the file

	mu      sync.Mutex
	loaded  bool
	stamp   stamp             // of the file records were read from
	records map[string]record // by id
}

// A stamp identifies one version of the tokens file: a rewrite is a rename,
// so the inode changes, and size and modification time catch the rest.
type stamp struct {
	exists   bool
	dev, ino uint64
	size     int64
	mtime    int64
}

func stampOf(fi fs.FileInfo) stamp {
	dev, ino := fileIdentity(fi)
	return stamp{exists: true, dev: dev, ino: ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// OpenTokens opens the token store in dir. A missing directory or file is
// an empty store (nothing is created until the first Create); a file that
// cannot be read or parsed is an error.
func OpenTokens(dir string, opts TokensOptions) (*Tokens, error) {
	t := &Tokens{dir: dir, now: opts.Now, onChange: opts.OnChange, store: opts.Store}
	if t.now == nil {
		t.now = time.Now
	}
	if t.store != nil {
		// records caches what the store said last (see authenticateStore).
		t.records = make(map[string]record)
		return t, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := t.refreshLocked(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) path() string { return filepath.Join(t.dir, tokensName) }

// Reload reads the file again if another process changed it, reporting
// the changes to OnChange. The server may call it periodically so that
// command-line changes reach the audit log without waiting for a request.
func (t *Tokens) Reload() error {
	if t.store != nil {
		return nil
	}
	t.mu.Lock()
	changes, err := t.refreshLocked()
	t.mu.Unlock()
	t.report(changes)
	return err
}

// List returns every token (expired ones too, until revoked), oldest first.
func (t *Tokens) List() ([]Token, error) {
	var out []Token
	if t.store != nil {
		var err error
		if out, err = t.listStore(); err != nil {
			return nil, err
		}
	} else {
		t.mu.Lock()
		changes, err := t.refreshLocked()
		for _, r := range t.records {
			out = append(out, r.cloneToken())
		}
		t.mu.Unlock()
		t.report(changes)
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Token) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Authenticate checks the token text "mgt_<id>_<secret>" and returns its
// token. It sees every change another process made to the file before the
// call began. Errors: ErrInvalidToken (malformed, unknown, revoked, wrong
// secret), ErrTokenExpired (with the token, for the message), or an I/O or
// format error reading the store.
func (t *Tokens) Authenticate(text string) (Token, error) {
	id, secret, ok := parseToken(text)
	if !ok {
		return Token{}, fmt.Errorf("not a modgate token (want mgt_<id>_<secret>): %w", ErrInvalidToken)
	}
	if t.store != nil {
		return t.authenticateStore(id, secret)
	}
	t.mu.Lock()
	changes, err := t.refreshLocked()
	rec, found := t.records[id]
	t.mu.Unlock()
	t.report(changes)
	if err != nil {
		return Token{}, err
	}
	got := hashSecret(id, secret)
	want := rec.Hash
	if !found {
		// Compare anyway, so the time taken does not say whether the id exists.
		want = strings.Repeat("0", len(got))
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 || !found {
		return Token{}, fmt.Errorf("unknown or revoked token: %w", ErrInvalidToken)
	}
	tok := rec.cloneToken()
	if now := t.now(); tok.Expired(now) {
		return tok, fmt.Errorf("token %q expired at %s: %w", tok.Name, tok.Expires.UTC().Format(time.RFC3339), ErrTokenExpired)
	}
	return tok, nil
}

// Create makes a token named name (unique among the stored tokens) with
// scopes, expiring at expires (zero: never), and returns its text — the
// only time it exists outside the client — and its record. Errors the
// caller can fix match ErrInvalidArgument; others are I/O errors.
func (t *Tokens) Create(name string, scopes []Scope, expires time.Time) (string, Token, error) {
	if err := checkName(name); err != nil {
		return "", Token{}, err
	}
	if len(scopes) == 0 {
		return "", Token{}, badArg("a token needs at least one scope")
	}
	now := t.now()
	if !expires.IsZero() && !expires.After(now) {
		return "", Token{}, badArg("expiry %s is not in the future", expires.UTC().Format(time.RFC3339))
	}
	idb, secretb := make([]byte, idBytes), make([]byte, secretBytes)
	rand.Read(idb) // crypto/rand.Read never fails
	rand.Read(secretb)
	id, secret := hex.EncodeToString(idb), hex.EncodeToString(secretb)
	tok := Token{ID: id, Name: name, Scopes: slices.Clone(scopes), Created: now.UTC().Truncate(time.Second)}
	if !expires.IsZero() {
		tok.Expires = expires.UTC()
	}
	if t.store != nil {
		if err := t.insertStore(record{Token: tok, Hash: hashSecret(id, secret)}); err != nil {
			return "", Token{}, fmt.Errorf("creating token %q: %w", name, err)
		}
		return tokenPrefix + id + "_" + secret, tok, nil
	}
	err := t.update(func(recs map[string]record) error {
		for _, r := range recs {
			if r.Name == name {
				return badArg("a token named %q already exists (id %s); revoke it or choose another name", name, r.ID)
			}
		}
		if _, dup := recs[id]; dup {
			return fmt.Errorf("token id %s collides with a stored one; try again", id)
		}
		recs[id] = record{Token: tok, Hash: hashSecret(id, secret)}
		return nil
	})
	if err != nil {
		return "", Token{}, fmt.Errorf("creating token %q: %w", name, err)
	}
	return tokenPrefix + id + "_" + secret, tok, nil
}

// Revoke deletes the token with id or name idOrName (ids are tried first)
// and returns it. An unknown token is an error matching fs.ErrNotExist.
// The token stops working in every process at its next Authenticate.
func (t *Tokens) Revoke(idOrName string) (Token, error) {
	if t.store != nil {
		tok, err := t.deleteStore(idOrName)
		if err != nil {
			return Token{}, fmt.Errorf("revoking token: %w", err)
		}
		return tok, nil
	}
	var revoked Token
	err := t.update(func(recs map[string]record) error {
		if r, ok := recs[idOrName]; ok {
			revoked = r.Token
			delete(recs, r.ID)
			return nil
		}
		for _, r := range recs {
			if r.Name == idOrName {
				revoked = r.Token
				delete(recs, r.ID)
				return nil
			}
		}
		return fmt.Errorf("no token with id or name %q: %w", idOrName, fs.ErrNotExist)
	})
	if err != nil {
		return Token{}, fmt.Errorf("revoking token: %w", err)
	}
	return revoked, nil
}

// update applies change to a fresh copy of the records under the
// cross-process lock and writes the result atomically.
func (t *Tokens) update(change func(map[string]record) error) error {
	if err := os.MkdirAll(t.dir, 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(t.dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := lockFile(lock); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}

	var changes []TokenChange
	defer func() { t.report(changes) }() // after the unlock below
	t.mu.Lock()
	defer t.mu.Unlock()
	// Another process may have written without changing the stamp we
	// compare (same size within the file system's time resolution, inode
	// reused): under the lock, always read.
	changes, err = t.loadLocked()
	if err != nil {
		return err
	}
	recs := maps.Clone(t.records)
	if err := change(recs); err != nil {
		return err
	}
	st, err := t.write(recs)
	if err != nil {
		return err
	}
	t.records, t.stamp = recs, st
	return nil
}

// write replaces the file with recs: temporary file, fsync, rename, fsync
// of the directory. Readers see the old file or the new one, never a part.
func (t *Tokens) write(recs map[string]record) (stamp, error) {
	f := tokensFile{Format: tokensFormat, Tokens: slices.SortedFunc(maps.Values(recs), func(a, b record) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})}
	if f.Tokens == nil {
		f.Tokens = []record{}
	}
	data, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return stamp{}, err
	}
	tmp, err := os.CreateTemp(t.dir, ".tokens-*.tmp") // mode 0600
	if err != nil {
		return stamp{}, err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return stamp{}, fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), t.path()); err != nil {
		return stamp{}, err
	}
	if d, err := os.Open(t.dir); err == nil {
		d.Sync() // make the rename durable; not all file systems support it
		d.Close()
	}
	// We hold the lock, so the file is still the one we wrote.
	fi, err := os.Stat(t.path())
	if err != nil {
		return stamp{}, err
	}
	return stampOf(fi), nil
}

// refreshLocked reloads the file if its stamp changed. t.mu must be held.
func (t *Tokens) refreshLocked() ([]TokenChange, error) {
	var st stamp
	fi, err := os.Stat(t.path())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("reading tokens: %w", err)
	default:
		st = stampOf(fi)
	}
	if t.loaded && st == t.stamp {
		return nil, nil
	}
	return t.loadLocked()
}

// loadLocked reads the file and returns how it differs from what was
// loaded before. t.mu must be held. On error the previous records stay.
func (t *Tokens) loadLocked() ([]TokenChange, error) {
	recs, st, err := readTokens(t.path())
	if err != nil {
		return nil, err
	}
	var changes []TokenChange
	if t.loaded {
		for id, r := range recs {
			if _, ok := t.records[id]; !ok {
				changes = append(changes, TokenChange{Action: ChangeCreated, Token: r.cloneToken()})
			}
		}
		for id, r := range t.records {
			if _, ok := recs[id]; !ok {
				changes = append(changes, TokenChange{Action: ChangeRevoked, Token: r.cloneToken()})
			}
		}
	}
	t.records, t.stamp, t.loaded = recs, st, true
	return changes, nil
}

// readTokens reads and checks the tokens file. The stamp is taken from the
// open file, so it describes exactly the bytes read even if the file is
// replaced meanwhile.
func readTokens(path string) (map[string]record, stamp, error) {
	recs := make(map[string]record)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return recs, stamp{}, nil
	}
	if err != nil {
		return nil, stamp{}, fmt.Errorf("reading tokens: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, stamp{}, fmt.Errorf("reading tokens: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, stamp{}, fmt.Errorf("reading tokens: %w", err)
	}
	var tf tokensFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tf); err != nil {
		return nil, stamp{}, fmt.Errorf("reading tokens: %s: %w", path, err)
	}
	if tf.Format != tokensFormat {
		return nil, stamp{}, fmt.Errorf("reading tokens: %s has format %d, this modgate reads format %d", path, tf.Format, tokensFormat)
	}
	for i, r := range tf.Tokens {
		if !isLowerHex(r.ID, 2*idBytes) || !isLowerHex(r.Hash, 2*sha256.Size) {
			return nil, stamp{}, fmt.Errorf("reading tokens: %s: token %d has a malformed id or hash", path, i)
		}
		if _, dup := recs[r.ID]; dup {
			return nil, stamp{}, fmt.Errorf("reading tokens: %s: token id %s appears twice", path, r.ID)
		}
		recs[r.ID] = r
	}
	return recs, stampOf(fi), nil
}

// report passes changes to OnChange. Call it without t.mu held.
func (t *Tokens) report(changes []TokenChange) {
	if t.onChange == nil {
		return
	}
	for _, c := range changes {
		t.onChange(c)
	}
}

func (r record) cloneToken() Token {
	tok := r.Token
	tok.Scopes = slices.Clone(tok.Scopes)
	return tok
}

// hashSecret is what is stored for a token: SHA-256 over a fixed label, the
// id and the secret, so that a hash copied to another record does not
// authenticate as it.
func hashSecret(id, secret string) string {
	sum := sha256.Sum256([]byte("modgate token v1\x00" + id + "\x00" + secret))
	return hex.EncodeToString(sum[:])
}

// parseToken splits "mgt_<id>_<secret>".
func parseToken(text string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(text, tokenPrefix)
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	if !ok || !isLowerHex(id, 2*idBytes) || !isLowerHex(secret, 2*secretBytes) {
		return "", "", false
	}
	return id, secret, true
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkName reports why name cannot name a token. Names appear in audit
// records, logs and command lines, so they are short and plain.
func checkName(name string) error {
	if name == "" {
		return badArg("a token needs a name")
	}
	if len(name) > maxNameLen {
		return badArg("token name %q is longer than %d characters", name, maxNameLen)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return badArg("token name %q: use letters, digits and . _ @ - only", name)
		}
	}
	if isLowerHex(name, 2*idBytes) {
		return badArg("token name %q looks like a token id; choose another", name)
	}
	return nil
}

// ParseExpiry parses when a token should expire, relative to now: "" or
// "never" (zero time), a number of days ("90d"), a Go duration ("36h"), a
// date ("2027-01-31", midnight UTC) or an RFC 3339 time. The result must be
// in the future.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	var at time.Time
	switch {
	case s == "" || s == "never":
		return time.Time{}, nil
	case strings.HasSuffix(s, "d"):
		n, err := strconv.Atoi(strings.TrimSuffix(s, "d"))
		if err != nil || n <= 0 || n > 100*366 {
			return time.Time{}, fmt.Errorf("expiry %q: want a positive number of days such as \"90d\"", s)
		}
		at = now.AddDate(0, 0, n)
	default:
		if d, err := time.ParseDuration(s); err == nil {
			at = now.Add(d)
			break
		}
		var err error
		if at, err = time.Parse(time.DateOnly, s); err != nil {
			if at, err = time.Parse(time.RFC3339, s); err != nil {
				return time.Time{}, fmt.Errorf("expiry %q: want \"never\", days (\"90d\"), a duration (\"36h\"), a date (\"2027-01-31\") or an RFC 3339 time", s)
			}
		}
	}
	if !at.After(now) {
		return time.Time{}, fmt.Errorf("expiry %q is not in the future", s)
	}
	return at.UTC(), nil
}
