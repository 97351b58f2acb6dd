package auth

import "path/filepath"

// ReadTokenFile returns every token record of the tokens file in dir
// ({data_dir}/auth), for moving a single modgate's tokens into a
// TokenStore. A missing file holds none. It changes nothing.
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
