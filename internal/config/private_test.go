package config

import "testing"

func TestPrivateValidate(t *testing.T) {
	src := func(body string) string {
		return "private:\n  sources:\n    - name: corp\n      patterns: [corp.example.com/*/*]\n" + body
	}
	tests := []struct {
		name string
		yaml string
		errs [][]string
	}{
		{name: "https with a token", yaml: src("      url: https://git.corp.example/{path}.git\n      password_env: CORP_TOKEN\n")},
		{name: "discovery", yaml: src("      discovery: true\n")},
		{
			name: "ssh with a user, key and known hosts",
			yaml: src("      url: ssh://git@git.corp.example:2222/{path}.git\n      ssh_key_file: /etc/modgate/id_ed25519\n      ssh_known_hosts_file: /etc/modgate/known_hosts\n"),
		},
		{
			name: "no url",
			yaml: src(""),
			errs: [][]string{{"private.sources[0].url: required"}},
		},
		{
			name: "url and discovery",
			yaml: src("      url: https://git.corp.example/{path}.git\n      discovery: true\n"),
			errs: [][]string{{"private.sources[0]: set url or discovery: true, not both"}},
		},
		{
			name: "template without a placeholder",
			yaml: src("      url: https://git.corp.example/repo.git\n"),
			errs: [][]string{{"private.sources[0].url:", "neither {path} nor {root}"}},
		},
		{
			name: "password in the url",
			yaml: src("      url: https://bot:hunter2@git.corp.example/{path}.git\n"),
			errs: [][]string{{"private.sources[0].url: credentials in the URL would be logged"}},
		},
		{
			name: "ssh password in the url",
			yaml: src("      url: ssh://git:hunter2@git.corp.example/{path}.git\n"),
			errs: [][]string{{"private.sources[0].url: credentials in the URL would be logged"}},
		},
		{
			name: "https user in the url",
			yaml: src("      url: https://bot@git.corp.example/{path}.git\n"),
			errs: [][]string{{"private.sources[0].url: credentials in the URL would be logged"}},
		},
		{
			name: "ssh key for https",
			yaml: src("      url: https://git.corp.example/{path}.git\n      ssh_key_file: /k\n      ssh_known_hosts_file: /kh\n"),
			errs: [][]string{
				{"private.sources[0].url: ssh_key_file needs an ssh:// URL"},
				{"private.sources[0].url: ssh_known_hosts_file needs an ssh:// URL"},
			},
		},
		{
			name: "password for ssh",
			yaml: src("      url: ssh://git@git.corp.example/{path}.git\n      password_env: CORP_TOKEN\n"),
			errs: [][]string{{"private.sources[0].url: ssh:// URLs authenticate with ssh_key_file, not a password"}},
		},
		{
			name: "relative files",
			yaml: src("      url: ssh://git@git.corp.example/{path}.git\n      ssh_key_file: id_ed25519\n      ssh_known_hosts_file: known_hosts\n"),
			errs: [][]string{
				{"private.sources[0].ssh_key_file:", "not an absolute path"},
				{"private.sources[0].ssh_known_hosts_file:", "not an absolute path"},
			},
		},
		{
			name: "unsupported scheme",
			yaml: src("      url: ftp://git.corp.example/{path}.git\n"),
			errs: [][]string{{`private.sources[0].url: scheme "ftp" not supported`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadValid(t, tt.yaml)
			checkProblems(t, "Validate", err, tt.errs)
		})
	}
}
