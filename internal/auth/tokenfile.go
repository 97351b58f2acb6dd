package auth

import "path/filepath"

// ReadTokenFile returns the tokens of the tokens file in dir (what
// OpenTokens without a Store keeps there), with the hashes of their
// secrets, for copying them into a shared TokenStore. A missing file
// holds no tokens.
func ReadTokenFile(dir string) ([]TokenRecord, error) {
	recs, _, err := readTokens(filepath.Join(dir, tokensName))
	if err != nil {
		return nil, err
	}
	out := make([]TokenRecord, 0, len(recs))
	for _, r := range recs {
		out = append(out, TokenRecord{Token: r.cloneToken(), SecretHash: r.Hash})
	}
	return out, nil
}
