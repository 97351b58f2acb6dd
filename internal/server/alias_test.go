package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/config"
	"github.com/modgate/modgate/internal/policy"
	"github.com/modgate/modgate/internal/testenv"
)

// Other spellings of what a rule refuses, through the real go command: a
// module path in another case, and pseudo-versions (with any base, or
// resolved from a commit hash) of a refused tag's commit.

// waitVulnDB waits until in has synced its vulnerability database.
func waitVulnDB(t *testing.T, in *instance) {
	t.Helper()
	pollUntil(t, 10*time.Second, func() string {
		code, body, _ := in.get(t, "/vulndb/index/db.json")
		if code != http.StatusOK {
			return fmt.Sprintf("GET /vulndb/index/db.json: %d %s", code, body)
		}
		return ""
	})
}

// explained is the JSON of a policy.Decision, as a client reads it.
type explained struct {
	Verdict string
	Matches []policy.Match
	Rules   []policy.Evaluation
}

// explain asks in's /policy/explain for module@version.
func explain(t *testing.T, in *instance, module, version string) explained {
	t.Helper()
	code, body, _ := in.get(t, "/policy/explain?module="+module+"&version="+version)
	if code != http.StatusOK {
		t.Fatalf("GET /policy/explain %s@%s: %d %s", module, version, code, body)
	}
	var d explained
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("GET /policy/explain: %v\n%s", err, body)
	}
	return d
}

// TestPolicyCaseVariants: a module denied in one spelling is refused in
// every other, with the rule and the pattern it matched; nothing of it is
// fetched or stored; and a vulnerability entry for a module covers its
// other spellings.
func TestPolicyCaseVariants(t *testing.T) {
	t.Parallel()
	dbURL, _ := serveVulnDB(t, osvVuln{id: "GO-2099-0301", module: "example.com/vuln", fixed: "v1.0.1"})
	up := testenv.NewUpstream(t, policyFixtures(t,
		// Upstream proxies serve both spellings of a path that a code
		// host treats as one.
		simpleModule(t, "github.com/acme/lib", "v1.0.0", "2024-01-01T00:00:00Z", ""),
		simpleModule(t, "github.com/Acme/lib", "v1.0.0", "2024-01-01T00:00:00Z", ""),
		simpleModule(t, "example.com/Vuln", "v1.0.0", "2024-01-01T00:00:00Z", ""),
	))
	in, _ := startPolicy(t, up, fmt.Sprintf(`
policy:
  vulndb:
    url: %s
  rules:
    - name: no-acme
      deny:
        modules: [github.com/acme/lib]
    - name: no-vulns
      vulnerabilities: {}
`, dbURL), nil)
	waitVulnDB(t, in)
	env := goEnv(t, in, up)

	for _, mod := range []string{"github.com/Acme/lib", "github.com/ACME/LIB"} {
		stderr := failGo(t, t.TempDir(), env, "mod", "download", mod+"@v1.0.0")
		outputHas(t, "go mod download "+mod, stderr,
			"403 Forbidden",
			`blocked by rule "no-acme": module is denied (pattern "github.com/acme/lib")`)
	}
	dir := t.TempDir()
	testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
	outputHas(t, "go get github.com/Acme/lib@latest", failGo(t, dir, env, "get", "github.com/Acme/lib@latest"), `blocked by rule "no-acme"`)
	if in.stored("github.com/!acme/lib/@v/v1.0.0.zip") || in.stored("github.com/!acme/lib/@v/v1.0.0.info") {
		t.Error("modgate stored a file of the denied module's case variant")
	}
	for _, p := range up.Requests() {
		if strings.Contains(strings.ToLower(p), "/github.com/!acme/lib/") {
			t.Errorf("modgate asked the upstream for the denied module's case variant: %s", p)
		}
	}

	d := explain(t, in, "github.com/Acme/lib", "v1.0.0")
	if d.Verdict != "block" || len(d.Matches) == 0 || d.Matches[0].Rule != "no-acme" || d.Matches[0].Pattern != "github.com/acme/lib" {
		t.Errorf("explain github.com/Acme/lib@v1.0.0 = %+v, want block by no-acme, pattern github.com/acme/lib", d)
	}
	if d.Rules[0].Pattern != "github.com/acme/lib" {
		t.Errorf("explain github.com/Acme/lib@v1.0.0: rule no-acme evaluation %+v lacks the pattern", d.Rules[0])
	}

	// The database names example.com/vuln; the upstream serves
	// example.com/Vuln.
	stderr := failGo(t, t.TempDir(), env, "mod", "download", "example.com/Vuln@v1.0.0")
	outputHas(t, "go mod download example.com/Vuln@v1.0.0", stderr, "403 Forbidden", `blocked by rule "no-vulns": GO-2099-0301 (fixed in v1.0.1)`)
	if in.stored("example.com/!vuln/@v/v1.0.0.zip") {
		t.Error("modgate stored the vulnerable zip of a case variant")
	}
}

// Commits of the fixture module example.com/alias.
const (
	commitV100 = "1000000000000000000000000000000000000000" // tagged v1.0.0
	commitV110 = "a110a110a110a110a110a110a110a110a110a110" // tagged v1.1.0, denied
	commitMain = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00" // untagged
	commitFree = "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0" // of example.com/free, no rule
)

// originModule is a module version whose .info carries Origin.Hash, as
// upstream proxies send it; its code says which commit it is.
func originModule(t *testing.T, path, version, when, commit string) *testenv.Module {
	t.Helper()
	name := path[strings.LastIndex(path, "/")+1:]
	info := fmt.Sprintf(`{"Version":%q,"Time":%q,"Origin":{"VCS":"git","URL":"https://%s","Hash":%q}}`, version, when, path, commit)
	return policyModule(t, fmt.Sprintf("module %s\nversion %s\ntime %s\n-- .info --\n%s\n-- go.mod --\nmodule %s\n\ngo 1.21\n-- %s.go --\npackage %s\n\n// Commit is the commit of this code.\nconst Commit = %q\n",
		path, version, when, info, path, name, name, commit))
}

// pseudoOf returns the pseudo-version of commit at when with base (""
// for v0.0.0).
func pseudoOf(base, when, commit string) string {
	tm, err := time.Parse(time.RFC3339, when)
	if err != nil {
		panic(err)
	}
	major := "v0"
	if base != "" {
		major = "v1"
	}
	return module.PseudoVersion(major, base, tm, commit[:12])
}

const denyAliasRange = `
policy:
  rules:
    - name: bad-range
      deny:
        modules: [example.com/alias]
        versions: [">=v1.1.0 <v1.2.0"]
`

// TestPolicyPseudoVersionAliases: with a version range denied, no
// pseudo-version of a denied tag's commit (base-less, with another base,
// or resolved from the commit hash by `go get`) gives the go command the
// denied code; a pseudo-version whose commit no tag points at is refused
// unless policy.unmapped_pseudo_versions allows it; pseudo-versions of an
// allowed commit, and of modules no version rule names, keep working; and
// the mapping is rebuilt from storage after a restart.
func TestPolicyPseudoVersionAliases(t *testing.T) {
	t.Parallel()
	const (
		t100  = "2024-01-01T00:00:00Z"
		t110  = "2024-02-01T00:00:00Z"
		tMain = "2024-03-01T00:00:00Z"
	)
	var (
		baseless    = pseudoOf("", t110, commitV110)
		based       = pseudoOf("v1.0.0", t110, commitV110) // v1.0.1-0.2024...
		unmapped    = pseudoOf("", tMain, commitMain)
		allowedPsv  = pseudoOf("", t100, commitV100)
		freePseudo  = pseudoOf("", t100, commitFree)
		aliasModule = "example.com/alias"
	)
	up := testenv.NewUpstream(t, policyFixtures(t,
		originModule(t, aliasModule, "v1.0.0", t100, commitV100),
		originModule(t, aliasModule, "v1.1.0", t110, commitV110),
		originModule(t, aliasModule, baseless, t110, commitV110),
		originModule(t, aliasModule, based, t110, commitV110),
		originModule(t, aliasModule, unmapped, tMain, commitMain),
		originModule(t, aliasModule, allowedPsv, t100, commitV100),
		originModule(t, "example.com/free", freePseudo, t100, commitFree),
	))
	dataDir := filepath.Join(t.TempDir(), "data")
	keepData := func(c *config.Config) { c.DataDir = dataDir }
	in, _ := startPolicy(t, up, denyAliasRange, keepData)
	env := goEnv(t, in, up)

	refused := func(what string, args ...string) string {
		t.Helper()
		dir := t.TempDir()
		testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
		stderr := failGo(t, dir, env, args...)
		outputHas(t, what, stderr, "403 Forbidden", `blocked by rule "bad-range"`)
		return stderr
	}
	refused("the denied tag", "mod", "download", aliasModule+"@v1.1.0")
	for _, v := range []string{baseless, based} {
		stderr := refused("pseudo-version "+v, "mod", "download", aliasModule+"@"+v)
		outputHas(t, "pseudo-version "+v, stderr, "commit a110a110a110, which is tagged v1.1.0")
	}
	refused("go get of the commit's pseudo-version", "get", aliasModule+"@"+baseless)
	refused("go get of the commit hash", "get", aliasModule+"@"+commitV110[:12])
	stderr := refused("unmapped pseudo-version", "mod", "download", aliasModule+"@"+unmapped)
	outputHas(t, "unmapped pseudo-version", stderr, "commit c0ffee00c0ff matches no known tag")

	for _, v := range []string{"v1.1.0", baseless, based, unmapped} {
		if key := aliasModule + "/@v/" + v + ".zip"; in.stored(key) {
			t.Errorf("refused zip %s was stored", key)
		}
	}
	// Pseudo-versions of an allowed commit, and of a module no version
	// rule names, are served.
	goDownload(t, env, aliasModule+"@"+allowedPsv, "example.com/free@"+freePseudo)

	// After a restart, with the upstream down, the mapping comes from the
	// stored .info files: the refusal still names the tag.
	in.shutdown(t)
	up.SetDown(true)
	in, _ = startPolicy(t, up, denyAliasRange, keepData)
	code, body, _ := in.get(t, "/"+aliasModule+"/@v/"+based+".zip")
	if code != http.StatusForbidden || !strings.Contains(string(body), "which is tagged v1.1.0") {
		t.Errorf("after a restart, GET %s.zip: %d %s; want 403 naming tag v1.1.0", based, code, body)
	}
	up.SetDown(false)
	in.shutdown(t)

	// The documented setting lets unmapped pseudo-versions through; the
	// pseudo-versions of the denied tag stay refused.
	in, _ = startPolicy(t, up, denyAliasRange+"  unmapped_pseudo_versions: allow\n", nil)
	env = goEnv(t, in, up)
	goDownload(t, env, aliasModule+"@"+unmapped)
	refused("pseudo-version of the denied tag with unmapped allowed", "mod", "download", aliasModule+"@"+baseless)
}

// TestPolicyPseudoVersionAliasesGit: the same through a private Git
// source, whose .info files name each tag's commit: the go command gets
// neither a base-less pseudo-version of a denied tag's commit nor the
// commit by its hash, an untagged commit's pseudo-version is refused by
// default, and a pseudo-version of an allowed tag's commit is served.
func TestPolicyPseudoVersionAliasesGit(t *testing.T) {
	t.Parallel()
	gs := testenv.NewGitServer(t, gitUser, gitPassword)
	repo := gs.Repo(t, "platform/auth")
	const mod = testenv.GitHost + "/platform/auth"
	c1 := repo.Commit("first", map[string]string{
		"go.mod":  "module " + mod + "\n\ngo 1.21\n",
		"auth.go": "package auth\n\nconst Version = \"v1.0.0\"\n",
	})
	repo.Tag("v1.0.0", "HEAD")
	c2 := repo.Commit("second", map[string]string{"auth.go": "package auth\n\nconst Version = \"v1.1.0\"\n"})
	repo.Tag("v1.1.0", "HEAD")
	c3 := repo.Commit("work in progress", map[string]string{"auth.go": "package auth\n\nconst Version = \"main\"\n"})

	up := testenv.NewUpstream(t, testenv.Fixtures(t))
	pwFile := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(pwFile, []byte(gitPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	in := startModgate(t, up, func(c *config.Config) {
		c.Private.Sources = []config.PrivateSource{{
			Name:         "corp",
			Patterns:     []string{testenv.GitHost + "/*/*"},
			URL:          "https://" + gs.Addr() + "/{path}.git",
			Username:     gitUser,
			PasswordFile: pwFile,
			CAFile:       gs.CAFile,
		}}
		c.Policy.Rules = []config.PolicyRule{{
			Name: "bad-range",
			Deny: config.PolicyModules{Modules: []string{mod}, Versions: []string{">=v1.1.0 <v1.2.0"}, Present: true},
		}}
	})
	env := goEnv(t, in, up, "GONOSUMDB="+testenv.GitHost, "PATH="+filepath.Dir(testenv.GoBinary(t)))

	// A commit's time, as the Git source reports it.
	commitTime := func(commit string) time.Time {
		t.Helper()
		code, body, _ := in.get(t, "/"+mod+"/@v/"+commit[:12]+".info")
		var info struct{ Time time.Time }
		if code != http.StatusOK || json.Unmarshal(body, &info) != nil {
			t.Fatalf("GET %s.info: %d %s", commit[:12], code, body)
		}
		return info.Time
	}
	baseless := module.PseudoVersion("v0", "", commitTime(c2), c2[:12])
	untagged := module.PseudoVersion("v0", "", commitTime(c3), c3[:12])
	allowed := module.PseudoVersion("v0", "", commitTime(c1), c1[:12])

	refused := func(what string, args ...string) string {
		t.Helper()
		dir := t.TempDir()
		testenv.WriteModule(t, dir, "module example.com/app\n\ngo 1.21\n", nil)
		stderr := failGo(t, dir, env, args...)
		outputHas(t, what, stderr, "403 Forbidden", `blocked by rule "bad-range"`)
		return stderr
	}
	stderr := refused("base-less pseudo-version of v1.1.0", "mod", "download", mod+"@"+baseless)
	outputHas(t, "base-less pseudo-version of v1.1.0", stderr, "which is tagged v1.1.0")
	refused("go get of v1.1.0's commit hash", "get", mod+"@"+c2)
	// A branch resolves to a pseudo-version based on v1.1.0: in the range.
	refused("go get of the branch", "get", mod+"@main")
	stderr = refused("untagged commit", "mod", "download", mod+"@"+untagged)
	outputHas(t, "untagged commit", stderr, "matches no known tag")
	if key := mod + "/@v/" + baseless + ".zip"; in.stored(key) {
		t.Errorf("refused zip %s was stored", key)
	}
	goDownload(t, env, mod+"@"+allowed)
}

// TestPrivateCaseVariantStaysPrivate: a case variant of a private module
// path is private too: modgate neither asks the public upstream for it nor
// looks it up in the public checksum database (either would leak the
// name), for the go command or a direct /sumdb/ request.
func TestPrivateCaseVariantStaysPrivate(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t,
		// The public upstream would answer for the variant.
		simpleModule(t, "corp.example.com/Secret", "v1.0.0", "2024-01-01T00:00:00Z", ""),
	))
	in := startModgate(t, up, func(c *config.Config) {
		c.Upstream.NoProxy = []string{"corp.example.com/secret"}
		c.SumDB.NoSumDB = []string{"corp.example.com/secret"}
	})
	env := goEnv(t, in, up)

	stderr := failGo(t, t.TempDir(), env, "mod", "download", "corp.example.com/Secret@v1.0.0")
	outputHas(t, "go mod download corp.example.com/Secret@v1.0.0", stderr, "404 Not Found")
	code, body, _ := in.get(t, "/sumdb/"+up.SumDBName()+"/lookup/corp.example.com/!secret@v1.0.0")
	if code == http.StatusOK {
		t.Errorf("GET /sumdb/.../lookup of the private variant: %d %s, want a refusal", code, body)
	}
	for _, p := range up.Requests() {
		if strings.Contains(strings.ToLower(p), "secret") {
			t.Errorf("modgate asked the public upstream about a private module's case variant: %s", p)
		}
	}
	if in.stored("corp.example.com/!secret/@v/v1.0.0.zip") {
		t.Error("the private variant's zip was fetched and stored")
	}
}

// TestAuthScopeDoesNotStretchToCaseVariants: a scope grants only the
// spelling it names (see auth.Scope.Allows): a token that reads
// example.com/greet is refused example.com/Greet, exactly as any module
// outside its scope, while policy rules refuse every spelling.
func TestAuthScopeDoesNotStretchToCaseVariants(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t, simpleModule(t, "example.com/Greet", "v1.0.0", "2024-01-01T00:00:00Z", "")))
	in := startModgate(t, up, func(c *config.Config) { c.Auth.Anonymous.Scopes = []string{publicScope} })
	reader := createToken(t, in, "greet-reader", time.Time{}, "read:example.com/greet")
	c := http.DefaultClient
	if r := call(t, c, "GET", in.URL+"/example.com/greet/@v/v1.0.0.info", "", bearer(reader)...); r.status != http.StatusOK {
		t.Fatalf("token in scope: %d %q, want 200", r.status, r.body)
	}
	r := call(t, c, "GET", in.URL+"/example.com/!greet/@v/v1.0.0.info", "", bearer(reader)...)
	if r.status != http.StatusNotFound || r.body != "modgate: example.com/Greet: not found\n" {
		t.Errorf("token on a case variant of its scope: %d %q; want 404 as out of scope", r.status, r.body)
	}
	for _, p := range up.Requests() {
		if strings.Contains(p, "!greet") {
			t.Errorf("modgate fetched the variant for a client not allowed to read it: %s", p)
		}
	}
}
