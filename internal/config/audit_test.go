package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAuditDefaults(t *testing.T) {
	c := validConfig(t)
	want := Audit{
		Enabled:            true,
		MaxSizeMB:          100,
		MaxAge:             Duration{24 * time.Hour},
		CheckpointInterval: Duration{time.Minute},
		Buffer:             1024,
		SpoolMaxMB:         256,
	}
	if diff := cmp.Diff(want, c.Audit); diff != "" {
		t.Errorf("default audit section (-want +got):\n%s", diff)
	}
	if got, want := c.AuditDir(), "/home/gopher/.local/share/modgate/audit"; got != want {
		t.Errorf("AuditDir() = %q, want %q", got, want)
	}
}

func TestAuditLoad(t *testing.T) {
	c, err := loadValid(t, `
audit:
  enabled: true
  dir: /var/log/modgate/audit
  max_size_mb: 10
  max_age: 1h
  retention: 2160h
  checkpoint_interval: 30s
  buffer: 64
  fail_closed: true
  pseudonymize: true
  pseudonym_key_file: /etc/modgate/pseudonym.key
  key_file: /etc/modgate/audit.key
  anchor_file: /mnt/remote/modgate-checkpoints
  anchor_syslog: udp://127.0.0.1:514
`)
	if err != nil {
		t.Fatalf("Validate = %v", err)
	}
	want := Audit{
		Enabled:            true,
		Dir:                "/var/log/modgate/audit",
		MaxSizeMB:          10,
		MaxAge:             Duration{time.Hour},
		Retention:          Duration{90 * 24 * time.Hour},
		CheckpointInterval: Duration{30 * time.Second},
		Buffer:             64,
		FailClosed:         true,
		SpoolMaxMB:         256,
		Pseudonymize:       true,
		PseudonymKeyFile:   "/etc/modgate/pseudonym.key",
		KeyFile:            "/etc/modgate/audit.key",
		AnchorFile:         "/mnt/remote/modgate-checkpoints",
		AnchorSyslog:       "udp://127.0.0.1:514",
	}
	if diff := cmp.Diff(want, c.Audit); diff != "" {
		t.Errorf("audit section (-want +got):\n%s", diff)
	}
	if got := c.AuditKeyFile(); got != "/etc/modgate/audit.key" {
		t.Errorf("AuditKeyFile() = %q, want audit.key_file", got)
	}
	if got := c.AuditDir(); got != "/var/log/modgate/audit" {
		t.Errorf("AuditDir() = %q, want audit.dir", got)
	}
	if got := c.Where("audit.fail_closed"); got != "config file "+c.pos["audit.fail_closed"] || got == "config file " {
		t.Errorf("Where(audit.fail_closed) = %q, want the file and line", got)
	}

	// The printed configuration reads back to the same section.
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := loadValid(t, string(out))
	if err != nil {
		t.Fatalf("printed configuration does not validate: %v\n%s", err, out)
	}
	if diff := cmp.Diff(c.Audit, back.Audit); diff != "" {
		t.Errorf("audit section after printing and loading (-want +got):\n%s", diff)
	}
}

func TestAuditValidate(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		errs [][]string
	}{
		{name: "disabled", yaml: "audit:\n  enabled: false\n"},
		{name: "size only, keep forever", yaml: "audit:\n  max_age: 0s\n  retention: 0s\n"},
		{
			name: "relative dir",
			yaml: "audit:\n  dir: audit\n",
			errs: [][]string{{"modgate.yaml:2: audit.dir:", `"audit" is not an absolute path; write the full path`}},
		},
		{
			name: "home dir",
			yaml: "audit:\n  dir: ~/audit\n",
			errs: [][]string{{`audit.dir: "~/audit" starts with ~, which is not expanded`}},
		},
		{
			name: "sizes and counts",
			yaml: "audit:\n  max_size_mb: 0\n  buffer: 2000000\n",
			errs: [][]string{
				{"audit.max_size_mb: must be between 1 and 1048576, got 0"},
				{"audit.buffer: must be between 1 and 1048576 records, got 2000000"},
			},
		},
		{
			name: "negative durations",
			yaml: "audit:\n  max_age: -1h\n  retention: -24h\n",
			errs: [][]string{
				{`audit.max_age: must not be negative, got "-1h"; write "0s" to rotate by size only`},
				{`audit.retention: must not be negative, got "-24h"; write "0s" to keep every record`},
			},
		},
		{
			name: "checkpoint interval too short",
			yaml: "audit:\n  checkpoint_interval: 100ms\n",
			errs: [][]string{{`audit.checkpoint_interval: must be at least "1s", got "100ms"`}},
		},
		{
			name: "pseudonym key without pseudonyms",
			yaml: "audit:\n  pseudonym_key_file: /etc/modgate/p.key\n",
			errs: [][]string{{"audit.pseudonym_key_file: set, but audit.pseudonymize is false; set audit.pseudonymize: true or remove audit.pseudonym_key_file"}},
		},
		{
			name: "anchors",
			yaml: "audit:\n  key_file: key\n  anchor_file: /home/gopher/.local/share/modgate/copy\n  anchor_syslog: http://127.0.0.1:514\n",
			errs: [][]string{
				{`audit.key_file: "key" is not an absolute path`},
				{`audit.anchor_file: "/home/gopher/.local/share/modgate/copy" is inside data_dir (/home/gopher/.local/share/modgate): an outside copy must survive`},
				{`audit.anchor_syslog: "http://127.0.0.1:514": scheme "http" not supported (want udp, tcp or unix)`},
			},
		},
		{
			name: "anchor in the log directory",
			yaml: "audit:\n  dir: /var/log/modgate\n  anchor_file: /var/log/modgate/copy\n",
			errs: [][]string{{`audit.anchor_file: "/var/log/modgate/copy" is inside the audit log directory (/var/log/modgate)`}},
		},
		{
			name: "relative pseudonym key",
			yaml: "audit:\n  pseudonymize: true\n  pseudonym_key_file: p.key\n",
			errs: [][]string{{`audit.pseudonym_key_file: "p.key" is not an absolute path`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadValid(t, tt.yaml)
			checkProblems(t, "Validate", err, tt.errs)
		})
	}
}

func TestAuditLoadTypes(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"bare number duration", "audit:\n  max_age: 3600\n", `audit.max_age: "3600" is not a duration`},
		{"string for a number", "audit:\n  buffer: many\n", `audit.buffer: want a whole number, got "many"`},
		{"string for a boolean", "audit:\n  fail_closed: yes please\n", `audit.fail_closed: want true or false`},
		{"unknown key", "audit:\n  retention_days: 90\n", `audit.retention_days: unknown key`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.yaml), envOf(nil))
			checkProblems(t, "Load", err, [][]string{{"modgate.yaml:2: " + tt.want}})
		})
	}
}
