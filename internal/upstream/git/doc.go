// Package git serves private modules straight from Git servers (GitLab,
// Gitea, GitHub Enterprise, plain git http-backend) as an upstream.Source,
// so that clients need neither Git nor credentials: modgate holds them.
//
// NewDirect (direct.go) is the same Source in "direct" mode, for the GOPROXY
// keyword: any public module path, its repository found with the go
// command's rules (hosting-site table, ".git" path elements, go-import
// tags confirmed at their prefix), Git over https only, no credentials,
// loopback and private hosts refused, other version control systems
// answered "not found" (ErrUnsupportedVCS). Only finding the repository
// differs; versions and zips are the code below.
//
// # What it answers
//
// A Source serves the module paths its patterns match (GOPRIVATE glob
// syntax). Source.Fetch answers the GOPROXY protocol paths the mirror asks
// for with the go command's own rules, ported function by function from
// cmd/go/internal/modfetch (coderepo.go, codehost/git.go) so that the
// answers are exactly what "GOPROXY=direct go mod download" computes:
//
//   - @v/list: the tags of the module's directory and major version
//     ("sub/dir/v1.2.3" for a module in sub/dir), retracted versions
//     included (the go command filters them itself), "+incompatible" where
//     the go command allows it;
//   - .info: Version, Time (commit time, UTC) and Origin as the go command
//     writes them; for a branch, a tag, a full or short commit hash or a
//     version prefix, the canonical version or pseudo-version it resolves
//     to;
//   - .mod: go.mod at the commit, or "module <path>\n" when there is none;
//   - .zip: "git archive" of the module directory with export-ignore and
//     export-subst switched off (as the go command does), turned into a
//     module zip by golang.org/x/mod/zip, so the h1: hash is the go
//     command's (same file set, same limits);
//   - @latest: the highest release, else pre-release, else the
//     pseudo-version of the default branch's HEAD.
//
// # Repositories
//
// The repository of a module is found from a URL template ({root}, {path})
// or from go-import meta tags (https://{path}?go-get=1, walking up the
// path). Its refs are read from the smart-HTTP advertisement
// (GET info/refs), which gives clean status codes: 401/403 are
// "authentication rejected", 404 "no such repository"; other URL schemes
// use "git ls-remote". Ref lists are kept for Config.RefsTTL, but never
// used for a fetch whose context asks for newer state
// (upstream.WithFreshSince: the mirror refreshing a list, @latest or a
// query); Forget drops them when a webhook says the repository changed.
//
// Objects live in one bare mirror per repository under Config.Dir, reused
// across requests and restarts. It is fetched (all branches and tags,
// incrementally, never re-cloned) only when a wanted commit is missing or,
// for a pseudo-version's base tag, when the refs changed since the last
// fetch. Fetches of one repository are serialised; different repositories
// never wait for each other, and a Limiter shared by all sources bounds the
// number of git processes.
//
// # Safety
//
// git never prompts: GIT_TERMINAL_PROMPT=0, no askpass, no credential
// helpers, no system or global git configuration. HTTP credentials reach
// git through GIT_CONFIG_* as an Authorization header scoped to the
// repository's host, never on a command line or in a URL; SSH uses
// GIT_SSH_COMMAND with BatchMode, only the configured key
// (IdentitiesOnly) and strict host key checking against the configured
// known_hosts file, so an unknown or changed host key fails instead of
// being trusted on first use. In discovery mode credentials go only to
// hosts the patterns name. Errors name the source, module and repository,
// keep git's command, exit status and trimmed stderr, and have secrets
// redacted; what ssh and git print is read to tell a refused key
// (ErrAuthentication), an untrusted host key and a missing repository
// (fs.ErrNotExist) apart. Every operation has a
// timeout and honours the caller's context; the process group of a
// timed-out git is killed.
//
// The package does not cache files, verify hashes or record first-seen
// hashes (package mirror), and knows nothing about HTTP handlers,
// webhooks or configuration files.
package git
