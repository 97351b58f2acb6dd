package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
)

// identityFlags are the parsed --identity, --groups and --claims flags.
type identityFlags = auth.IdentityQuery

// parseIdentityFlags reads --identity METHOD:USER, --groups and --claims.
func parseIdentityFlags(identity, groups, claims string) (auth.IdentityQuery, error) {
	method, user, _ := strings.Cut(identity, ":")
	q := auth.IdentityQuery{Method: method, User: user}
	switch method {
	case auth.MethodHTPasswd, auth.MethodLDAP:
		if user == "" {
			return q, fmt.Errorf("--identity %s: want %s:USER", identity, method)
		}
		if claims != "" {
			return q, errors.New("--claims goes with --identity oidc")
		}
	case auth.MethodOIDC:
		if claims == "" {
			return q, errors.New("--identity oidc needs the token's claims: --claims '{\"iss\":...}' or --claims @FILE")
		}
	default:
		return q, fmt.Errorf("--identity %q: want htpasswd:USER, ldap:USER or oidc", identity)
	}
	if groups != "" {
		if method != auth.MethodLDAP {
			return q, errors.New("--groups goes with --identity ldap:USER")
		}
		for _, g := range strings.Split(groups, ",") {
			if g = strings.TrimSpace(g); g != "" {
				q.Groups = append(q.Groups, g)
			}
		}
	}
	if claims != "" {
		data := []byte(claims)
		if name, ok := strings.CutPrefix(claims, "@"); ok {
			var err error
			if data, err = os.ReadFile(name); err != nil {
				return q, fmt.Errorf("--claims: %w", err)
			}
		}
		if err := json.Unmarshal(data, &q.Claims); err != nil {
			return q, fmt.Errorf("--claims: not a JSON object of claims: %v", err)
		}
	}
	return q, nil
}

// explainIdentity prints which scopes q's identity gets, and why, and
// whether it may read mod when mod is not empty.
func explainIdentity(cfg config.Config, q auth.IdentityQuery, mod string, stdout, stderr io.Writer) int {
	// Explaining binds to nothing, so it needs no service password.
	cfg.Auth.LDAP.BindPasswordEnv, cfg.Auth.LDAP.BindPasswordFile = "", ""
	acfg, err := cfg.Auth.AuthConfig()
	if err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	acfg.Tokens = false // explain needs no token store
	a, err := auth.New(acfg, auth.Deps{})
	if err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	ex, err := a.ExplainIdentity(q)
	if err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	var b strings.Builder
	name := ex.Name
	if name == "" {
		name = "(no name claim)"
	}
	fmt.Fprintf(&b, "identity %s (method %s)\n", name, ex.Method)
	for _, n := range ex.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	fmt.Fprintf(&b, "\nScopes\n")
	if len(ex.Grants) == 0 {
		fmt.Fprintf(&b, "  none of its own\n")
	}
	for _, g := range ex.Grants {
		fmt.Fprintf(&b, "  %-40s from %s\n", auth.FormatScopes(g.Scopes), g.From)
	}
	if len(ex.Anonymous) > 0 {
		fmt.Fprintf(&b, "  %-40s from auth.anonymous.scopes (every client)\n", auth.FormatScopes(ex.Anonymous))
	}
	if ex.Refused != "" {
		fmt.Fprintf(&b, "\nRefused even with the right credentials: %s\n", ex.Refused)
	}
	if mod != "" && ex.Refused == "" {
		id := auth.Identity{Name: ex.Name, Method: ex.Method, Scopes: ex.Scopes()}
		if err := a.Authorize(id, auth.Read, mod); err != nil {
			fmt.Fprintf(&b, "\n%s: may not read (%v)\n", mod, err)
		} else {
			fmt.Fprintf(&b, "\n%s: may read\n", mod)
		}
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		fmt.Fprintf(stderr, "modgate explain: %v\n", err)
		return 2
	}
	return 0
}
