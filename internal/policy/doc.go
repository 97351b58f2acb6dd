// Package policy decides which modules and versions modgate may serve. An
// Engine is built once from a Config (the rules, in order) and answers
// Decide for one file of one module version with a Decision that always
// names the rules that objected and why. The same engine runs in the proxy
// and offline in `modgate check`.
//
// This package owns the rules, their evaluation, the first-seen store that
// dates versions (Ages) and licence detection from module zips
// (LicenseDetector). It does not fetch anything, read the configuration
// file (package config converts it to a Config), write HTTP responses
// (the server maps ErrBlocked to 403 and writes Decision.Message), or sync
// the vulnerability database (package vulndb, behind VulnSource).
//
// # Rules and how each is evaluated
//
// Every rule has a name, an action (block or warn), an optional reason and
// contact text shown to the developer, and a dry-run switch. Module
// patterns use the GOPRIVATE syntax (a path.Match glob matched against as
// many leading path elements as it has, as module.MatchPrefixPatterns
// does), without regard to case (see "Other spellings" below). Version ranges are space-separated comparisons that must all hold
// (">=v1.2.0 <v1.4.0", "<v2.0.0", "v1.2.3"), compared with semver.Compare;
// a rule's list of ranges matches a version in any of them.
//
//   - deny: the module matches a pattern and, when versions are given, the
//     version is in a range. Without versions it refuses the whole module.
//   - allow: allow-list mode. A module matching none of the patterns is
//     refused as a whole; with versions, a listed module's versions outside
//     the ranges are refused. Several allow rules each apply: a module must
//     pass all of them, so list every allowed module in one rule (and use
//     pin rules for per-module versions).
//   - pin: for modules matching the patterns, only versions in the ranges
//     are approved; other modules are not affected.
//   - cooldown: a version younger than the minimum age is refused, unless
//     the module matches an exempt pattern. Age: see below. When the age
//     cannot be known (no first-seen time, no .info time with the "info"
//     source) the rule is "not checked" and does not refuse.
//   - vulnerabilities: every entry the VulnSource reports for the version
//     refuses it, except entries accepted by ID or alias whose acceptance
//     has not expired (an expired acceptance stops applying at its Until
//     instant). The detail lists the IDs; Fix is the highest of their fixed
//     versions, or empty when one of them has no fix. Answers are cached
//     per module@version for a minute (bounded).
//   - licenses: the licence IDs detected in the version's zip must all be
//     in the allow list (a dual-licensed module must have every licence
//     allowed). No licence file, or a licence file the classifier does not
//     recognise, follows the rule's unknown action (block, warn or allow).
//     Modules matching an exempt pattern are skipped. Before the zip has
//     been seen the licence is not known and the rule is "not checked"
//     (the server fetches the zip of the version a list or latest answer
//     would lead the go command to, so that one is judged in time).
//
// A Decision's verdict is Block when any matching rule with action block
// is not dry-run, else Warn when any matching warn rule is not dry-run,
// else Allow. Dry-run rules (and every rule when Config.DryRun is set)
// are evaluated and reported in Matches, marked DryRun, and never block
// or warn. Every rule's outcome (match, no-match, not-applicable,
// not-checked) is in Decision.Rules for the explain endpoint.
//
// # Which file a rule refuses
//
// The go command reads the go.mod (and .info) of many versions it never
// builds, to load the module graph. Refusing those would break builds that
// do not use the version at all. So:
//
//   - module rules (deny without versions, allow for a module it does not
//     list) refuse every file of the module: list, latest, .info, .mod and
//     .zip. The go command then fails on the module wherever it is needed.
//   - version rules (deny or allow with versions, pin, cooldown,
//     vulnerabilities, licences) refuse only the version's .zip: the code.
//     The version is also left out of list answers (Filter) and latest
//     (Latest picks the highest allowed version, a release before any
//     pre-release), so `go get -u` and `go get mod@latest` choose an
//     allowed version instead of failing.
//
// # Other spellings of a refused module or version
//
// A rule must hold for every request that yields the code it refuses, not
// only for the spelling it was written in.
//
// Module paths: code hosts treat "github.com/Acme/lib" (escaped "!acme")
// and "github.com/acme/lib" as one repository, and upstream proxies serve
// both. So module and exempt patterns match in lower case, Ages keys
// modules in lower case (a tag young under one spelling is young under
// all), vulnerability sources are asked in any case (package vulndb
// folds), and acceptance IDs compare without case. Decision rules carry
// the Pattern that matched, as written, for the explain endpoint. (Access
// scopes in package auth deliberately do not fold: a scope grants.)
//
// Pseudo-versions: the go command accepts a pseudo-version with any base
// for any commit, so "v0.0.0-20240201000000-a110a110a110" may name the
// very code of a denied tag v1.1.0, and its spelling says nothing about
// that. A rule that names versions (deny or allow with versions, pin)
// therefore judges the .zip of a pseudo-version by its commit: the
// TagSource (Deps.Tags) maps the pseudo-version's 12-hex revision to the
// tags whose .info Origin.Hash starts with it (TagIndex reads them through
// InfoFiles: the server's mirror, or the module cache for `modgate
// check`).
//
//   - mapped: refused when the rule refuses any tag at the commit (a deny
//     rule also when the pseudo-version itself is in its range); allowed
//     when it allows them all, whatever the base says;
//   - unmapped (an untagged commit, an upstream that omits Origin, a
//     lookup that failed): refused when the rule refuses the
//     pseudo-version itself, else Config.UnmappedPseudoVersions decides:
//     block (default), warn, or allow (judge the spelling alone).
//
// Cooldown rules date a mapped pseudo-version by the oldest of its tags
// whose age is known (its own .info time is the commit's, which anyone can
// back-date), so a fresh tag's code cannot be had early under another
// name. Vulnerability rules look up the pseudo-version itself and, when
// mapped, its tags: OSV compares a pseudo-version by its spelling, which is right
// for an unmapped one and too weak for a base-less alias of a vulnerable
// tag. Queries (a branch, a commit hash) resolve to a tag or a
// pseudo-version whose .zip is decided like any other, and Filter and
// Latest use Decide, so list and latest answers never offer a refused
// pseudo-version. Tags are looked up only for the .zip of a
// pseudo-version of a module that some version or vulnerabilities rule
// applies to and no module rule refuses, at most once per decision.
//
// The mapping is as good as the .info files: nothing authenticates
// Origin, so a hostile upstream can omit it (the pseudo-version is then
// unmapped, refused by default) or name another commit; what it cannot
// do is hide an honest tag at the commit, since every tag is checked and
// any refused one refuses the alias. TagIndex keeps no file of its own:
// stored .info files are immutable, so after a restart it derives the same
// facts from storage (offline too), caching them in memory.
//
// # How a version's age is computed
//
// A version's .info Time is the commit time, chosen by whoever tags: tagging
// an old commit back-dates the version, so it is not trusted alone. Ages
// records, per module, when modgate first saw the module's version list
// (the module is then "watched") and, for every later list, the versions
// that were not in any earlier list, with the time they appeared. Age is,
// in order:
//
//  1. now minus the time the version first appeared in the list of a
//     module already watched: a fresh tag is young whatever its commit
//     date says;
//  2. for versions without that time (those present in the module's first
//     list, or requested directly without ever being listed), the
//     configured publish-time source:
//     "info" (default): now minus the .info Time (the caller passes it in
//     Subject.InfoTime; Ages remembers it for later list filtering);
//     weak, as above;
//     "first-request": now minus the time modgate first saw the version
//     at all (in a list or a request); strict: when modgate starts
//     watching a module, every existing version waits out the cooldown.
//
// The first-seen times are only as good as the lists the server observes
// (Ages.ObserveList with each list fetched from the upstream). `modgate
// check` has no first-seen store and uses the .info Time from the module
// cache.
package policy
