package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/modgate/modgate/internal/auth"
	"github.com/modgate/modgate/internal/config"
)

const tokenUsage = `usage: modgate token create --name NAME --scope SCOPE [--scope SCOPE]... [--expires 90d]
       modgate token list
       modgate token revoke ID|NAME

Token manages the access tokens modgate accepts, stored as hashes in
{data_dir}/auth, or in the shared PostgreSQL database when state.postgres is
set. The running servers see every change at their next request.

A scope is read:PATTERN, publish:PATTERN or admin; PATTERN uses GOPRIVATE
syntax (corp.example.com/team-a/* is every module under team-a), and read
alone means every module. --expires takes days (90d), a duration (36h), a
date (2027-01-31) or never (the default).

Every subcommand takes --config FILE (also MODGATE_CONFIG) and --data-dir DIR.
`

// Token implements `modgate token create|list|revoke`. It returns the exit
// status: 0 on success, 1 when the store cannot do what was asked (an
// unknown token, a name already taken, an unreadable store), 2 for bad
// arguments or a configuration that does not load or validate.
func Token(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return token(ctx, args, stdout, stderr, tokenDeps{getenv: os.Getenv, goEnv: config.ReadGoEnv, now: time.Now})
}

// tokenDeps are Token's connections to the process, replaced in tests.
type tokenDeps struct {
	getenv func(string) string
	goEnv  func(context.Context) (config.GoEnv, error)
	now    func() time.Time
}

// scopeList is a repeatable --scope flag; each value may also hold several
// scopes separated by commas (patterns never contain commas).
type scopeList []string

func (s *scopeList) String() string { return strings.Join(*s, ",") }

func (s *scopeList) Set(v string) error {
	for part := range strings.SplitSeq(v, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*s = append(*s, part)
		}
	}
	return nil
}

func token(ctx context.Context, args []string, stdout, stderr io.Writer, deps tokenDeps) int {
	usage := func() int {
		fmt.Fprint(stderr, tokenUsage)
		return 2
	}
	if len(args) == 0 {
		return usage()
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, tokenUsage)
		return 0
	case "create", "list", "revoke":
	default:
		fmt.Fprintf(stderr, "modgate token: unknown subcommand %q\n\n", sub)
		return usage()
	}
	prog := "modgate token " + sub

	fset := newFlagSet(prog, tokenUsage+"\nFlags:\n", stderr)
	configPath := fset.String("config", deps.getenv("MODGATE_CONFIG"), "read the configuration from `FILE` (also MODGATE_CONFIG)")
	dataDir := fset.String("data-dir", "", "data `directory` (default: data_dir from the configuration)")
	var name, expires string
	var scopes scopeList
	if sub == "create" {
		fset.StringVar(&name, "name", "", "the token's `NAME`, unique: letters, digits, . _ @ -")
		fset.Var(&scopes, "scope", "a `SCOPE` the token grants; repeat for more")
		fset.StringVar(&expires, "expires", "never", "when the token stops working: 90d, 36h, 2027-01-31 or never")
	}
	// Flags may come before or after the argument.
	var positional []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fset.NArg() == 0 {
			break
		}
		positional = append(positional, fset.Arg(0))
		args = fset.Args()[1:]
	}
	wantArgs := 0
	if sub == "revoke" {
		wantArgs = 1
	}
	if len(positional) != wantArgs {
		fmt.Fprintf(stderr, "%s: want %d arguments, got %q\n", prog, wantArgs, positional)
		return 2
	}

	cfg, err := tokenConfig(ctx, *configPath, *dataDir, deps)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	opts := auth.TokensOptions{Now: deps.now}
	if cfg.PostgresEnabled() {
		// Replicas keep their tokens in the shared database.
		db, err := openStateDB(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		defer db.Close()
		opts.Store = db.Tokens()
	}
	tokens, err := auth.OpenTokens(cfg.AuthDir(), opts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}

	switch sub {
	case "create":
		return tokenCreate(cfg, tokens, name, scopes, expires, stdout, stderr, deps.now())
	case "list":
		return tokenList(tokens, stdout, stderr, deps.now())
	default:
		return tokenRevoke(tokens, positional[0], stdout, stderr)
	}
}

// tokenConfig loads, resolves and validates the configuration as serve
// does, with --data-dir applied like serve's flag.
func tokenConfig(ctx context.Context, path, dataDir string, deps tokenDeps) (config.Config, error) {
	cfg, err := config.Load(path, deps.getenv)
	if err != nil && !errors.Is(err, config.ErrInvalid) {
		return config.Config{}, err
	}
	// The file's problems (err) come back from Validate, with the rest.
	if dataDir != "" {
		if err := cfg.Set("data_dir", dataDir, "flag --data-dir"); err != nil {
			return config.Config{}, err
		}
	}
	goenv, err := deps.goEnv(ctx)
	if err != nil {
		// Not fatal here either: Validate says what is missing, if anything.
		goenv = config.GoEnv{}
	}
	if err := cfg.Resolve(goenv); err != nil {
		return config.Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		return config.Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return cfg, nil
}

func tokenCreate(cfg config.Config, tokens *auth.Tokens, name string, scopeTexts []string, expiresText string, stdout, stderr io.Writer, now time.Time) int {
	const prog = "modgate token create"
	if name == "" || len(scopeTexts) == 0 {
		fmt.Fprintf(stderr, "%s: --name and at least one --scope are required\n", prog)
		return 2
	}
	scopes, err := auth.ParseScopes(scopeTexts)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	expires, err := auth.ParseExpiry(expiresText, now)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	text, tok, err := tokens.Create(name, scopes, expires)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		if errors.Is(err, auth.ErrInvalidArgument) {
			return 2
		}
		return 1
	}
	if !cfg.Auth.Tokens.Enabled {
		fmt.Fprintf(stderr, "%s: warning: auth.tokens.enabled is false (%s), so the server refuses tokens until it is set to true\n", prog, cfg.Where("auth.tokens.enabled"))
	}
	host := "MODGATE-HOST"
	// The go command matches a .netrc machine against the host and the
	// port, so keep the port when public_url has one.
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		host = u.Host
	}
	fmt.Fprintf(stdout, `Created token %q (id %s): %s, expires %s.
This is the only time it is shown; store it now:

%s

Use it as the password for this server, for example in ~/.netrc (the user name is ignored):

  machine %s login token password %s

or send it as a header (a GOAUTH command, curl): Authorization: Bearer %s
The go command sends credentials only over HTTPS.
`, tok.Name, tok.ID, auth.FormatScopes(tok.Scopes), formatExpiry(tok, now), text, host, text, text)
	return 0
}

func tokenList(tokens *auth.Tokens, stdout, stderr io.Writer, now time.Time) int {
	list, err := tokens.List()
	if err != nil {
		fmt.Fprintf(stderr, "modgate token list: %v\n", err)
		return 1
	}
	if len(list) == 0 {
		fmt.Fprintln(stdout, "No tokens. Create one with: modgate token create --name NAME --scope SCOPE")
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tEXPIRES")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, auth.FormatScopes(t.Scopes), t.Created.UTC().Format(time.DateTime), formatExpiry(t, now))
	}
	tw.Flush()
	return 0
}

func tokenRevoke(tokens *auth.Tokens, idOrName string, stdout, stderr io.Writer) int {
	tok, err := tokens.Revoke(idOrName)
	if err != nil {
		fmt.Fprintf(stderr, "modgate token revoke: %v\n", err)
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintln(stderr, "modgate token list shows the tokens there are")
		}
		return 1
	}
	fmt.Fprintf(stdout, "Revoked token %q (id %s). It stops working at the server's next request.\n", tok.Name, tok.ID)
	return 0
}

// formatExpiry says when a token expires, or that it has.
func formatExpiry(t auth.Token, now time.Time) string {
	switch {
	case t.Expires.IsZero():
		return "never"
	case t.Expired(now):
		return "expired " + t.Expires.UTC().Format(time.DateTime)
	}
	return t.Expires.UTC().Format(time.DateTime)
}
