// Package auth decides who a request comes from and what that identity may
// do: tokens, mutual TLS client certificates, identity from a trusted
// reverse-proxy header, anonymous access, client address allow and deny
// lists, and the server's TLS configuration. It does not write audit records
// (package audit does; this package offers hooks that report what happened)
// and it does not map errors to HTTP statuses for module requests (the
// server's one error mapper does, from the sentinels below).
//
// # Authentication
//
// Middleware establishes one Identity per request and puts it in the request
// context (FromContext). It checks, in this order, and the first that
// applies wins:
//
//  1. the client address against auth.client_ips: a denied address (or one
//     outside a non-empty allow list) is refused with 403 before anything
//     else is looked at;
//  2. the trusted identity header (auth.trusted_header.name): when the
//     request carries it, the direct peer must be one of the configured
//     proxies, otherwise the request is refused with 403 — a spoofed header
//     is an attack or a misconfiguration, and either should be loud, not
//     silently downgraded to anonymous. The header is checked before the
//     other methods so that a proxy that forwards its own clients'
//     Authorization header does not turn every request into a bad token;
//  3. a verified client certificate (TLS with a client CA): the identity is
//     the certificate's subject common name (or its first DNS name);
//  4. credentials in the Authorization header: a token as the Basic-auth
//     password (the user name is ignored, so .netrc and GOAUTH work with the
//     go command) or as a Bearer token. Wrong, malformed or expired
//     credentials answer 401 with WWW-Authenticate; they never fall back to
//     anonymous, so a client learns its token is bad;
//  5. otherwise the request is anonymous.
//
// Behind a trusted proxy the client address is taken from X-Forwarded-For:
// the rightmost address that is not itself a trusted proxy, which a client
// cannot forge because the proxy appends the address it saw.
//
// Failed credential checks are rate-limited per client address (IPv6 per
// /64): every failure takes one unit from a token bucket refilled at
// auth.failed_attempts.per_minute; while the bucket is empty, requests
// from that address that carry credentials answer 429 with Retry-After
// without being checked. Requests without credentials and clients on other
// addresses are never affected, so an attacker cannot lock anyone else out.
//
// # Tokens
//
// A token is "mgt_<id>_<secret>": the id (64 random bits, hex) finds the
// record, the secret (256 random bits, hex) proves possession. Only
// SHA-256(id, secret) is stored, in {data_dir}/auth/tokens.json, or, for
// replicas, in a TokenStore (tokenstore.go; package state/postgres), which
// every Authenticate reads, so a revocation reaches every replica at its
// next request. A fast
// hash is enough because the secret is uniformly random: with 2^256
// possibilities there is no dictionary to try, which is the only thing a
// slow password hash (bcrypt, argon2) protects against, and the per-request
// cost stays a microsecond. Hashes are compared with crypto/subtle.
//
// The file is shared by the server and the `modgate token` command. Writers
// take an advisory lock, rewrite the file atomically (temporary file,
// fsync, rename, fsync of the directory) and readers stat the file on every
// Authenticate and reload it when its inode, size or modification time
// changed, so a token revoked from the command line stops working with the
// very next request.
//
// # Authorisation
//
// A Scope is a permission on a module pattern (GOPRIVATE glob syntax,
// matched against path prefixes). Admin implies publish and read on every
// module; publish on a pattern implies read on it. An identity's effective
// scopes are its own plus the anonymous scopes (when anonymous access is
// enabled): authenticating never loses access an anonymous client has.
//
// Authorize answers, when the effective scopes do not allow the request:
//
//	identity        permission   error                         status
//	anonymous       any          ErrUnauthenticated            401 (the go command retries with credentials)
//	authenticated   read MODULE  matches fs.ErrNotExist        404 (a private module's existence is not revealed)
//	                             and ErrHidden
//	authenticated   read ""      ErrForbidden                  403
//	authenticated   publish      ErrForbidden                  403
//	authenticated   admin        ErrForbidden                  403
//
// # TLS
//
// ServerTLS builds the server's tls.Config: the certificate and key files
// are re-read when they change (a stat per handshake), a client CA file
// (re-read the same way) enables mutual TLS without requiring it (token
// clients still connect), and the
// minimum version is TLS 1.2 unless 1.3 is asked for.
package auth
