package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"golang.org/x/mod/sumdb/note"
)

// GenerateKeyText returns a new signing key as note private key text (the
// content of a key file) and its public verifier key text, for a key kept
// elsewhere than a file (the shared chain's database).
func GenerateKeyText() (private, public string, err error) {
	private, public, err = note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return "", "", fmt.Errorf("generating audit signing key: %w", err)
	}
	return private, public, nil
}

// ParseKeyText decodes note private key text as GenerateKeyText and
// LoadOrCreateKey write it.
func ParseKeyText(private string) (ed25519.PrivateKey, error) {
	return parsePrivateKey(private)
}
