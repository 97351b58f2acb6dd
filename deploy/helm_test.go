package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/modgate/modgate/internal/config"
)

const (
	chartDir       = "helm/modgate"
	chartCIValues  = "helm/modgate/ci/test-values.yaml"
	helmInstallMsg = "build it: GOBIN=$HOME/.cache/modgate-ci/bin go install -ldflags='-s -w -X helm.sh/helm/v4/internal/version.version=v4.3.2' helm.sh/helm/v4/cmd/helm@v4.3.2, as .ci/run does"
)

// helmBinary finds helm: $MODGATE_HELM, the CI cache, then PATH.
func helmBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MODGATE_HELM"); p != "" {
		return p
	}
	if home, err := os.UserHomeDir(); err == nil {
		p := filepath.Join(home, ".cache", "modgate-ci", "bin", "helm")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return tool(t, "helm", helmInstallMsg)
}

// helm runs helm with its state directories in a temporary directory and
// returns stdout, and stderr in the error.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	tmp := t.TempDir()
	cmd := exec.CommandContext(t.Context(), helmBinary(t), args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+tmp, "HELM_CONFIG_HOME="+tmp, "HELM_DATA_HOME="+tmp)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// replicatedValues turns on everything the chart can: three replicas on
// S3 and PostgreSQL, the ServiceMonitor with a token, the PrometheusRule.
var replicatedValues = []string{
	"--set", "replicaCount=3",
	"--set", "storage.s3.enabled=true,storage.s3.bucket=modules,storage.s3.endpoint=http://s3.corp.example:9000,storage.s3.existingSecret=modgate-s3",
	"--set", "postgres.existingSecret=modgate-pg",
	"--set", "serviceMonitor.enabled=true,serviceMonitor.bearerTokenSecret.name=modgate-metrics,serviceMonitor.bearerTokenSecret.key=token",
	"--set", "prometheusRule.enabled=true",
}

func TestHelmLint(t *testing.T) {
	if _, err := helm(t, "lint", "--strict", chartDir, "-f", chartCIValues); err != nil {
		t.Error(err)
	}
	if _, err := helm(t, append([]string{"lint", "--strict", chartDir, "-f", chartCIValues}, replicatedValues...)...); err != nil {
		t.Error(err)
	}
}

// manifests renders the chart and returns its objects by kind.
func manifests(t *testing.T, extra ...string) map[string][]map[string]any {
	t.Helper()
	out, err := helm(t, append([]string{"template", "r", chartDir, "-f", chartCIValues}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string][]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output: %v", err)
		}
		if o == nil {
			continue
		}
		kind, _ := o["kind"].(string)
		objs[kind] = append(objs[kind], o)
	}
	return objs
}

// at walks a decoded YAML tree: string keys index maps, ints index lists.
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func only(t *testing.T, objs map[string][]map[string]any, kind string) map[string]any {
	t.Helper()
	if n := len(objs[kind]); n != 1 {
		t.Fatalf("the chart renders %d %s objects, want 1", n, kind)
	}
	return objs[kind][0]
}

// containerEnv returns the container's environment by name.
func containerEnv(c any) map[string]map[string]any {
	env := map[string]map[string]any{}
	list, _ := at(c, "env").([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		name, _ := m["name"].(string)
		env[name] = m
	}
	return env
}

// TestHelmTemplate checks the rendered single-replica release: probes on
// /healthz and /readyz, the image's non-root user with nothing to escalate
// to, a read-only root file system, the data volume where the image keeps
// its data, no Secret objects, and a modgate.yaml this modgate accepts.
func TestHelmTemplate(t *testing.T) {
	objs := manifests(t)
	if len(objs["Secret"]) > 0 {
		t.Errorf("the chart renders Secrets; secrets must be referenced, never created from values")
	}
	if len(objs["PodDisruptionBudget"]) > 0 {
		t.Errorf("one replica has a PodDisruptionBudget, which would block node drains")
	}
	dep := only(t, objs, "Deployment")
	pod := at(dep, "spec", "template", "spec")
	c := at(pod, "containers", 0)
	for _, p := range []struct{ probe, path string }{{"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}} {
		if got := at(c, p.probe, "httpGet", "path"); got != p.path {
			t.Errorf("%s path %v, want %s", p.probe, got, p.path)
		}
		if got := at(c, p.probe, "httpGet", "port"); got != "http" {
			t.Errorf("%s port %v, want the named port http", p.probe, got)
		}
	}
	if at(c, "ports", 0, "name") != "http" {
		t.Errorf("container port 0 is %v, want http", at(c, "ports", 0))
	}
	env := containerEnv(c)
	_, port, _ := net.SplitHostPort(fmt.Sprint(env["MODGATE_LISTEN"]["value"]))
	if fmt.Sprint(at(c, "ports", 0, "containerPort")) != port {
		t.Errorf("containerPort %v, MODGATE_LISTEN %v: they must agree", at(c, "ports", 0, "containerPort"), env["MODGATE_LISTEN"]["value"])
	}

	// The user is the image's (deploy/container/Containerfile USER).
	stages := parseContainerfile(t)
	run := stages[len(stages)-1]
	users := run.all("USER")
	imageUID, _, _ := strings.Cut(users[len(users)-1], ":")
	if at(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("pod securityContext.runAsNonRoot = %v, want true", at(pod, "securityContext", "runAsNonRoot"))
	}
	if got := fmt.Sprint(at(pod, "securityContext", "runAsUser")); got != imageUID {
		t.Errorf("pod runAsUser %s, want the image's user %s", got, imageUID)
	}
	if at(c, "securityContext", "allowPrivilegeEscalation") != false || at(c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Errorf("container securityContext %v, want allowPrivilegeEscalation false and readOnlyRootFilesystem true", at(c, "securityContext"))
	}
	if drop := fmt.Sprint(at(c, "securityContext", "capabilities", "drop")); drop != "[ALL]" {
		t.Errorf("capabilities.drop %s, want [ALL]", drop)
	}
	if at(pod, "automountServiceAccountToken") != false {
		t.Errorf("automountServiceAccountToken %v, want false (modgate does not talk to the API server)", at(pod, "automountServiceAccountToken"))
	}

	// The data volume is mounted where the image keeps its data, on the
	// claim; the old pod must release it before the new one starts.
	dataDir := run.env()["MODGATE_DATA_DIR"]
	if env["MODGATE_DATA_DIR"]["value"] != dataDir {
		t.Errorf("MODGATE_DATA_DIR %v, want the image's %s", env["MODGATE_DATA_DIR"]["value"], dataDir)
	}
	mounts := map[string]string{}
	for i := 0; at(c, "volumeMounts", i) != nil; i++ {
		mounts[fmt.Sprint(at(c, "volumeMounts", i, "mountPath"))] = fmt.Sprint(at(c, "volumeMounts", i, "name"))
	}
	if mounts[dataDir] != "data" || mounts["/tmp"] == "" {
		t.Errorf("volume mounts %v, want data at %s and a writable /tmp", mounts, dataDir)
	}
	if at(pod, "volumes", 1, "persistentVolumeClaim", "claimName") == nil || len(objs["PersistentVolumeClaim"]) != 1 {
		t.Errorf("the data volume is %v, want the chart's PersistentVolumeClaim", at(pod, "volumes", 1))
	}
	if at(dep, "spec", "strategy", "type") != "Recreate" {
		t.Errorf("strategy %v, want Recreate with a ReadWriteOnce volume", at(dep, "spec", "strategy"))
	}
	def := config.Default()
	if grace, _ := at(pod, "terminationGracePeriodSeconds").(int); float64(grace) <= (def.Server.DrainPeriod.Duration + def.Server.ShutdownTimeout.Duration).Seconds() {
		t.Errorf("terminationGracePeriodSeconds %d, want more than drain_period + shutdown_timeout", grace)
	}

	// modgate.yaml is a configuration this modgate loads and validates.
	cm := only(t, objs, "ConfigMap")
	text, _ := at(cm, "data", "modgate.yaml").(string)
	file := filepath.Join(t.TempDir(), "modgate.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file, func(k string) string {
		if e, ok := env[k]; ok {
			s, _ := e["value"].(string)
			return s
		}
		return ""
	})
	if err != nil {
		t.Fatalf("the chart's modgate.yaml does not load: %v\n%s", err, text)
	}
	if cfg.DataDir != dataDir || cfg.Listen != env["MODGATE_LISTEN"]["value"] {
		t.Errorf("loaded data_dir %q listen %q, want the chart's %s and %v", cfg.DataDir, cfg.Listen, dataDir, env["MODGATE_LISTEN"]["value"])
	}
	if err := cfg.Resolve(config.GoEnv{}); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("the chart's modgate.yaml does not validate: %v\n%s", err, text)
	}
}

// TestHelmReplicated: three replicas on S3 and PostgreSQL take their
// credentials from the named Secrets through env (never a value), keep
// no claim, and the ServiceMonitor and PrometheusRule are there, the
// latter holding exactly deploy/prometheus/modgate-rules.yaml.
func TestHelmReplicated(t *testing.T) {
	objs := manifests(t, replicatedValues...)
	if len(objs["Secret"]) > 0 {
		t.Errorf("the chart renders Secrets; secrets must be referenced, never created from values")
	}
	dep := only(t, objs, "Deployment")
	if at(dep, "spec", "replicas") != 3 {
		t.Errorf("replicas %v, want 3", at(dep, "spec", "replicas"))
	}
	c := at(dep, "spec", "template", "spec", "containers", 0)
	env := containerEnv(c)
	for name, want := range map[string][2]string{
		"MODGATE_S3_ACCESS_KEY": {"modgate-s3", "access-key"},
		"MODGATE_S3_SECRET_KEY": {"modgate-s3", "secret-key"},
		"MODGATE_POSTGRES_DSN":  {"modgate-pg", "dsn"},
	} {
		e := env[name]
		if e == nil {
			t.Errorf("env lacks %s", name)
			continue
		}
		if _, literal := e["value"]; literal {
			t.Errorf("env %s has a literal value; want a secretKeyRef", name)
		}
		ref := at(e, "valueFrom", "secretKeyRef")
		if at(ref, "name") != want[0] || at(ref, "key") != want[1] {
			t.Errorf("env %s from %v, want Secret %s key %s", name, ref, want[0], want[1])
		}
	}
	if pdb := only(t, objs, "PodDisruptionBudget"); at(pdb, "spec", "maxUnavailable") != 1 {
		t.Errorf("PodDisruptionBudget maxUnavailable %v, want 1", at(pdb, "spec", "maxUnavailable"))
	}
	if len(objs["PersistentVolumeClaim"]) > 0 || at(dep, "spec", "strategy") != nil {
		t.Errorf("replicas on S3 keep a claim or the Recreate strategy")
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(fmt.Sprint(at(only(t, objs, "ConfigMap"), "data", "modgate.yaml"))), &cfg); err != nil {
		t.Fatal(err)
	}
	for _, kv := range []struct {
		path []any
		want any
	}{
		{[]any{"storage", "type"}, "s3"},
		{[]any{"storage", "s3", "bucket"}, "modules"},
		{[]any{"storage", "s3", "access_key_env"}, "MODGATE_S3_ACCESS_KEY"},
		{[]any{"storage", "s3", "secret_key_env"}, "MODGATE_S3_SECRET_KEY"},
		{[]any{"state", "postgres", "dsn_env"}, "MODGATE_POSTGRES_DSN"},
	} {
		if got := at(cfg, kv.path...); got != kv.want {
			t.Errorf("modgate.yaml %v = %v, want %v", kv.path, got, kv.want)
		}
	}

	sm := only(t, objs, "ServiceMonitor")
	if at(sm, "spec", "endpoints", 0, "port") != "http" || at(sm, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoint %v, want port http path /metrics", at(sm, "spec", "endpoints", 0))
	}
	if at(sm, "spec", "endpoints", 0, "authorization", "credentials", "name") != "modgate-metrics" {
		t.Errorf("ServiceMonitor authorization %v, want the token Secret modgate-metrics", at(sm, "spec", "endpoints", 0, "authorization"))
	}
	// The job label the alerts match (up{job="modgate"}) comes from the
	// Service label the ServiceMonitor names.
	jobLabel, _ := at(sm, "spec", "jobLabel").(string)
	if job := at(only(t, objs, "Service"), "metadata", "labels", jobLabel); job != "modgate" {
		t.Errorf("the scrape job would be %v (Service label %q), want modgate as in %s", job, jobLabel, rulesFile)
	}

	pr := only(t, objs, "PrometheusRule")
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := yaml.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if got := at(pr, "spec"); !reflect.DeepEqual(got, want) {
		t.Errorf("PrometheusRule spec differs from %s", rulesFile)
	}
}

// TestHelmRefusals: values that cannot work fail the render with a
// message naming the value.
func TestHelmRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"replicas on one volume", []string{"-f", chartCIValues, "--set", "replicaCount=2"}, "replicaCount > 1 needs storage.s3.enabled and postgres.existingSecret"},
		{"replicas without postgres", []string{"-f", chartCIValues, "--set", "replicaCount=2,storage.s3.enabled=true,storage.s3.bucket=b,storage.s3.existingSecret=s"}, "replicaCount > 1 needs"},
		{"no upstream", nil, "config.upstream.goproxy is required"},
		{"s3 without a secret", []string{"-f", chartCIValues, "--set", "storage.s3.enabled=true,storage.s3.bucket=b"}, "storage.s3.existingSecret is required"},
		{"data_dir in config", []string{"-f", chartCIValues, "--set", "config.data_dir=/x"}, "set by the chart"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helm(t, append([]string{"template", "r", chartDir}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template %v: %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}
