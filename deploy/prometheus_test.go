package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

const (
	rulesFile     = "prometheus/modgate-rules.yaml"
	rulesTestFile = "prometheus/modgate-rules.test.yaml"
	dashboardFile = "grafana/modgate.json"
)

// promtoolInstall says how to get promtool when it is missing.
const promtoolInstall = "Debian: apt-get install --no-install-recommends prometheus"

// TestPromtool checks the rules and runs their unit tests with the real
// promtool.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", promtoolInstall)
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTestFile}} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert  string            `yaml:"alert"`
			Record string            `yaml:"record"`
			Expr   string            `yaml:"expr"`
			For    string            `yaml:"for"`
			Labels map[string]string `yaml:"labels"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

// TestEveryAlertTested: each alert has a severity and at least one unit
// test in which it fires, so a new alert comes with its test.
func TestEveryAlertTested(t *testing.T) {
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tf); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	fires := map[string]bool{}
	for _, g := range tf.Tests {
		for _, c := range g.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no test in %s in which it fires", r.Alert, rulesTestFile)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical or warning", r.Alert, s)
			}
		}
	}
	if n < 10 {
		t.Errorf("%s has %d alerts, want the documented set (at least 10)", rulesFile, n)
	}
}

// A dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
}

func readDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// A query is one PromQL expression the rules or the dashboard run, with
// where it comes from.
type query struct{ where, expr string }

func queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range readRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{rulesFile + ": " + r.Alert + r.Record, r.Expr})
		}
	}
	d := readDashboard(t)
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("%s: panel %q %s", dashboardFile, p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			// label_values(metric, label) is Grafana's, not PromQL.
			inner := strings.TrimSuffix(strings.TrimPrefix(v.Definition, "label_values("), ")")
			metric, label, _ := strings.Cut(inner, ",")
			qs = append(qs, query{dashboardFile + ": variable " + v.Name, fmt.Sprintf("count by (%s) (%s)", strings.TrimSpace(label), metric)})
		}
	}
	return qs
}

// TestDashboardQueriesParse hands every dashboard query to promtool as a
// recording rule, so a query Prometheus would reject fails here.
func TestDashboardQueriesParse(t *testing.T) {
	promtool := tool(t, "promtool", promtoolInstall)
	d := readDashboard(t)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			rules = append(rules, rule{fmt.Sprintf("dashboard:panel%d_%s", p.ID, tg.RefID), grafanaVariables.Replace(tg.Expr)})
		}
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no queries", dashboardFile)
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(t.Context(), promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}

// TestMetricsReferencedExist scrapes a running modgate that has served a
// module, failed one upstream request and has a policy rule, and checks
// that every metric and label the alert rules and the dashboard use is in
// that scrape, and that the dashboard shows every modgate_ family there.
// A renamed metric or label, or a new metric without a panel, fails here.
func TestMetricsReferencedExist(t *testing.T) {
	url, up := startModgate(t, `
policy:
  rules:
    - name: no-evil
      deny:
        modules: [example.com/evil]
`)
	for _, p := range []string{"/example.com/hello/@v/list", "/example.com/hello/@v/v1.0.0.info", "/example.com/hello/@v/v1.0.0.mod", "/example.com/hello/@v/v1.0.0.zip"} {
		if code, body := get(t, url+p); code != 200 {
			t.Fatalf("GET %s = %d %s", p, code, body)
		}
	}
	up.SetStatus("/example.com/greet/", 500)
	if code, _ := get(t, url+"/example.com/greet/@v/v1.0.0.info"); code < 500 {
		t.Fatalf("GET greet with the upstream failing = %d, want 5xx", code)
	}
	_, body := get(t, url+"/metrics")
	fams, err := parseScrape(body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	// up is written by Prometheus itself, with the target's labels.
	promOwn := map[string]bool{"up": true}

	dashboardUses := map[string]bool{}
	for _, q := range queries(t) {
		ref, err := references(q.expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		if len(ref.metrics) == 0 {
			t.Errorf("%s: %q selects no metric", q.where, q.expr)
		}
		seen := map[string]bool{}
		for name, labels := range ref.metrics {
			if promOwn[name] {
				continue
			}
			have, ok := sampleLabels(fams, name)
			if !ok {
				t.Errorf("%s: metric %s is not in a running modgate's /metrics", q.where, name)
				continue
			}
			if strings.HasPrefix(q.where, dashboardFile) {
				dashboardUses[name] = true
			}
			for l := range have {
				seen[l] = true
			}
			for _, l := range labels {
				if l != "instance" && l != "job" && !have[l] {
					t.Errorf("%s: %s has no label %q (it has %v)", q.where, name, l, sortedKeys(have))
				}
			}
		}
		for _, l := range ref.grouping {
			if l != "instance" && l != "job" && !seen[l] {
				t.Errorf("%s: groups by %q, which none of its metrics has", q.where, l)
			}
		}
	}
	var missing []string
	for name, f := range fams {
		if !strings.HasPrefix(name, "modgate_") {
			continue
		}
		used := false
		for s := range f.samples {
			used = used || dashboardUses[s]
		}
		if !used {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("%s shows no panel for %v: add one (and an alert in %s if someone must act on it)", dashboardFile, missing, rulesFile)
	}
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func TestReferences(t *testing.T) {
	for _, tc := range []struct {
		name, expr string
		metrics    map[string][]string
		grouping   []string
	}{
		{"plain", `up == 0`, map[string][]string{"up": {}}, nil},
		{"selector and range", `increase(modgate_x_total{kind=~"a|b", instance=~"$instance"}[$__rate_interval]) > 0`,
			map[string][]string{"modgate_x_total": {"kind", "instance"}}, nil},
		{"grouping and binary", `sum by (le, artifact) (rate(a_bucket[5m])) / on(instance) b > 0.1 and c > 0`,
			map[string][]string{"a_bucket": {}, "b": {}, "c": {}}, []string{"le", "artifact", "instance"}},
		{"strings and numbers", `label_replace(m{l="}{\"x"}, "dst", "$1", "src", "(.*)") * 2e3 offset 5m`,
			map[string][]string{"m": {"l"}}, nil},
		{"time and keywords", `time() - max(ts > 0) unless bool on() z`,
			map[string][]string{"ts": {}, "z": {}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := references(tc.expr)
			if err != nil {
				t.Fatalf("references(%q): %v", tc.expr, err)
			}
			if diff := cmp.Diff(tc.metrics, ref.metrics); diff != "" {
				t.Errorf("references(%q).metrics (-want +got):\n%s", tc.expr, diff)
			}
			if diff := cmp.Diff(tc.grouping, ref.grouping); diff != "" {
				t.Errorf("references(%q).grouping (-want +got):\n%s", tc.expr, diff)
			}
		})
	}
}
