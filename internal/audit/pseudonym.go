package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// PseudonymPrefix starts every pseudonym, so a reader (and Query) can tell
// a pseudonymised value from a real one.
const PseudonymPrefix = "p:"

// Pseudonym returns the pseudonym of value under key: "p:" and the first
// 12 bytes (24 hex digits) of HMAC-SHA256(key, value). The same value
// always maps to the same pseudonym under one key, so records of one client
// can still be correlated, but without the key the value cannot be
// recovered or confirmed by guessing. An empty value stays empty.
func Pseudonym(key []byte, value string) string {
	if value == "" {
		return value
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(value))
	return PseudonymPrefix + hex.EncodeToString(m.Sum(nil)[:12])
}
