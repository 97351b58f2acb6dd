package auth

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// HTPasswdConfig configures static users from an htpasswd file.
type HTPasswdConfig struct {
	// File is the htpasswd file: "user:hash" lines, bcrypt hashes only
	// ("$2y$", "$2a$" or "$2b$", as `htpasswd -B` writes). It is read
	// again when it changes.
	File string
	// Users gives users their scopes, directly or through groups (names
	// in Config.Groups). Users in the file but not listed get
	// DefaultScopes.
	Users         []UserScopes
	DefaultScopes []Scope
}

// UserScopes gives one user scopes of its own and the scopes of groups.
type UserScopes struct {
	Name   string
	Scopes []Scope
	Groups []string
}

// htpasswd holds the users of an htpasswd file, re-read when it changes.
type htpasswd struct {
	path  string
	mu    sync.Mutex
	stamp stamp
	users map[string][]byte
	// decoy is a hash of the file, compared against when the user is
	// unknown, so that an unknown user costs the same bcrypt work (same
	// cost) as a wrong password and the time taken does not say whether
	// the user exists.
	decoy []byte
	err   error // why the last read failed; the previous users stay
}

func openHTPasswd(path string) (*htpasswd, error) {
	h := &htpasswd{path: path}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refreshLocked()
	if h.err != nil {
		return nil, h.err
	}
	return h, nil
}

// refreshLocked reads the file again if it changed. A file that became
// unreadable or invalid keeps the previous users and records the error,
// which check reports, so that a half-written edit does not lock everyone
// out, nor let anyone in.
func (h *htpasswd) refreshLocked() {
	st := statStamp(h.path)
	if st == h.stamp && (h.users != nil || h.err != nil) {
		return
	}
	users, err := readHTPasswd(h.path)
	h.stamp = st
	if err != nil {
		h.err = err
		return
	}
	h.users, h.err = users, nil
	h.decoy = nil
	for _, hash := range users {
		if h.decoy == nil || bytes.Compare(hash, h.decoy) < 0 {
			h.decoy = hash
		}
	}
}

// readHTPasswd parses an htpasswd file, refusing every hash that is not
// bcrypt with the line that holds it.
func readHTPasswd(path string) (map[string][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	users := make(map[string][]byte)
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok || user == "" || hash == "":
			errs = append(errs, fmt.Errorf("%s:%d: want user:hash", path, n))
			continue
		case !validUserName(user):
			errs = append(errs, fmt.Errorf("%s:%d: user name %q has spaces or control characters", path, n, user))
			continue
		case users[user] != nil:
			errs = append(errs, fmt.Errorf("%s:%d: user %q appears twice", path, n, user))
			continue
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: user %q: %s; only bcrypt is accepted (create it with htpasswd -B)", path, n, user, describeHash(hash)))
			continue
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("htpasswd: %s: %w", path, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return users, nil
}

// describeHash names the weak scheme of an htpasswd hash.
func describeHash(hash string) string {
	switch {
	case strings.HasPrefix(hash, "$apr1$"), strings.HasPrefix(hash, "$1$"):
		return "the hash is MD5"
	case strings.HasPrefix(hash, "{SHA}"):
		return "the hash is SHA-1"
	case strings.HasPrefix(hash, "$5$"), strings.HasPrefix(hash, "$6$"):
		return "the hash is SHA-crypt"
	case strings.HasPrefix(hash, "$2"):
		return "the bcrypt hash is malformed"
	case len(hash) == 13:
		return "the hash is DES crypt"
	}
	return "the hash is not bcrypt (or is plain text)"
}

// check reports whether password is user's. known says whether the user
// is in the file; an unknown user costs the same time as a wrong
// password. A file that cannot be read is an error.
func (h *htpasswd) check(user, password string) (known, ok bool, err error) {
	h.mu.Lock()
	h.refreshLocked()
	hash, known := h.users[user]
	decoy := h.decoy
	h.mu.Unlock()
	if !known {
		if decoy != nil {
			bcrypt.CompareHashAndPassword(decoy, []byte(password))
		}
		return false, false, nil
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	return true, err == nil, nil
}

// has reports whether user is in the file (for explain).
func (h *htpasswd) has(user string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refreshLocked()
	_, ok := h.users[user]
	return ok
}

// loadError is the error of the last read, nil when it succeeded (the
// users of the last good read are still used).
func (h *htpasswd) loadError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refreshLocked()
	return h.err
}

// validUserName reports whether s can be a user name: printable, no
// spaces, at most maxHeaderUser bytes.
func validUserName(s string) bool {
	if s == "" || len(s) > maxHeaderUser {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == ':' {
			return false
		}
	}
	return true
}
