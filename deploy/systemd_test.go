package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modgate/modgate/internal/config"
)

const unitFile = "systemd/modgate.service"

// readUnit returns the unit's directives per section, every value of a
// directive in order (systemd lists may repeat a directive).
func readUnit(t *testing.T) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	unit := map[string]map[string][]string{}
	section := ""
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			unit[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a directive: %q", unitFile, n+1, line)
			}
			unit[section][k] = append(unit[section][k], v)
		}
	}
	return unit
}

// TestSystemdUnit checks the hardening that matters for modgate: an
// unprivileged identity, a writable state directory and nothing else
// writable, no capabilities, only the socket families it uses, and a stop
// timeout longer than the drain and shutdown periods.
func TestSystemdUnit(t *testing.T) {
	svc := readUnit(t)["Service"]
	if svc == nil {
		t.Fatalf("%s has no [Service] section", unitFile)
	}
	one := func(k string) string {
		v := svc[k]
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	for k, want := range map[string]string{
		"DynamicUser":             "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"NoNewPrivileges":         "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"AmbientCapabilities":     "",
		"RestrictSUIDSGID":        "yes",
		"ProtectKernelTunables":   "yes",
		"ProtectKernelModules":    "yes",
		"ProtectControlGroups":    "yes",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"RestrictNamespaces":      "yes",
		"SystemCallArchitectures": "native",
		"StateDirectory":          "modgate",
	} {
		if _, ok := svc[k]; !ok {
			t.Errorf("[Service] lacks %s=%s", k, want)
		} else if got := one(k); got != want {
			t.Errorf("[Service] %s=%s, want %s", k, got, want)
		}
	}
	if _, ok := svc["User"]; ok {
		t.Errorf("[Service] sets User= as well as DynamicUser=yes")
	}
	fams := strings.Fields(one("RestrictAddressFamilies"))
	if len(fams) == 0 {
		t.Errorf("[Service] lacks RestrictAddressFamilies")
	}
	for _, f := range fams {
		if !slices.Contains([]string{"AF_INET", "AF_INET6", "AF_UNIX"}, f) {
			t.Errorf("RestrictAddressFamilies allows %s, which modgate does not use", f)
		}
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("SystemCallFilter %q lacks @system-service", svc["SystemCallFilter"])
	}

	// The data directory is the state directory, the only writable place.
	env := map[string]string{}
	for _, line := range svc["Environment"] {
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	if want := "%S/" + one("StateDirectory"); env["MODGATE_DATA_DIR"] != want || env["HOME"] != want {
		t.Errorf("MODGATE_DATA_DIR=%q HOME=%q, want both %s (the only writable directory)", env["MODGATE_DATA_DIR"], env["HOME"], want)
	}
	if f := strings.Fields(one("ExecStart")); len(f) < 2 || filepath.Base(f[0]) != "modgate" || f[1] != "serve" {
		t.Errorf("ExecStart=%s, want modgate serve", one("ExecStart"))
	}
	if !strings.Contains(one("ExecReload"), "-HUP") {
		t.Errorf("ExecReload=%s, want SIGHUP (modgate reloads its policy on it)", one("ExecReload"))
	}
	stop, err := time.ParseDuration(strings.TrimSpace(one("TimeoutStopSec")))
	if err != nil {
		t.Errorf("TimeoutStopSec=%s: %v", one("TimeoutStopSec"), err)
	}
	def := config.Default()
	if need := def.Server.DrainPeriod.Duration + def.Server.ShutdownTimeout.Duration; stop <= need {
		t.Errorf("TimeoutStopSec=%v, want more than drain_period + shutdown_timeout = %v, or systemd kills downloads in flight", stop, need)
	}
}

// TestSystemdAnalyze runs systemd-analyze on the unit: verify must print
// nothing (an unknown or misspelt directive is only a warning to systemd,
// and a failure here), and the offline security score must stay "OK"
// (exposure at most 2.0 of 10).
func TestSystemdAnalyze(t *testing.T) {
	sa := tool(t, "systemd-analyze", "Debian: apt-get install systemd")
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart exists and is executable: point it at
	// one that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "modgate.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/modgate", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), sa, "verify", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(t.Context(), sa, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want at most 2.0:\n%s", level, out)
	}
}
