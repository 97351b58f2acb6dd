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
// does). Version ranges are space-separated comparisons that must all hold
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
