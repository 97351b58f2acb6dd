package server_test

import (
	"net/http"
	"testing"

	"github.com/modgate/modgate/internal/testenv"
)

// TestPolicyDecisionCountedOnce: one request counts each rule that matched
// its decision once in modgate_policy_decisions_total, also when the zip's
// licence is judged in a second decision after the zip is fetched.
func TestPolicyDecisionCountedOnce(t *testing.T) {
	t.Parallel()
	up := testenv.NewUpstream(t, policyFixtures(t,
		simpleModule(t, "example.com/mitlib", "v1.0.0", "2024-01-01T00:00:00Z", licenseText(t, "MIT")),
	))
	in, _ := startPolicy(t, up, `
policy:
  rules:
    - name: old-mitlib
      action: warn
      deny:
        modules: [example.com/mitlib]
        versions: ["<v1.1.0"]
    - name: licences
      licenses:
        allow: [MIT]
`, nil)
	decisions := func() float64 {
		_, body, _ := in.get(t, "/metrics")
		return metricValue(string(body), `modgate_policy_decisions_total{rule="old-mitlib",verdict="warn"}`)
	}
	for i, when := range []string{"cold (the licence is judged after the fetch)", "warm (the licence is known)"} {
		if code, _, _ := in.get(t, "/example.com/mitlib/@v/v1.0.0.zip"); code != http.StatusOK {
			t.Fatalf("GET the zip %s: %d, want 200", when, code)
		}
		if got, want := decisions(), float64(i+1); got != want {
			t.Errorf("after %d zip requests, the last %s: warn decisions of old-mitlib = %v, want %v", i+1, when, got, want)
		}
	}
	// The real go command (an empty module cache) asks for the .info,
	// .mod and .zip: the version rule judges the zip alone, once.
	goDownload(t, goEnv(t, in, up), "example.com/mitlib@v1.0.0")
	if got := decisions(); got != 3 {
		t.Errorf("after go mod download: warn decisions of old-mitlib = %v, want 3", got)
	}
}
