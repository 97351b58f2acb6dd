package upstream

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBuildSelfExclusion(t *testing.T) {
	self := []string{"127.0.0.1:3000", "http://modgate.corp.example", "modgate-alias.corp.example", "[::]:4000"}
	tests := []struct {
		name         string
		self         []string // default: self above
		list         string
		wantEntries  []string
		wantExcluded []string
		wantErr      string
	}{
		{name: "localhost is 127.0.0.1", list: "http://localhost:3000,https://mirror.example",
			wantEntries: []string{"https://mirror.example"}, wantExcluded: []string{"http://localhost:3000"}},
		{name: "loopback forms", list: "http://[::1]:3000|http://0.0.0.0:3000|http://127.0.0.2:3000|http://LOCALHOST.:3000/x,direct",
			wantEntries:  []string{"direct"},
			wantExcluded: []string{"http://[::1]:3000", "http://0.0.0.0:3000", "http://127.0.0.2:3000", "http://LOCALHOST.:3000/x"}},
		{name: "other port kept", list: "http://127.0.0.1:3001,off", wantEntries: []string{"http://127.0.0.1:3001", "off"}},
		{name: "https on the same port is still us", list: "https://localhost:3000,direct", wantEntries: []string{"direct"},
			wantExcluded: []string{"https://localhost:3000"}},
		{name: "public URL with default port", list: "http://modgate.corp.example/,http://MODGATE.corp.example:80,https://modgate.corp.example",
			wantEntries: []string{"https://modgate.corp.example"}, wantExcluded: []string{"http://modgate.corp.example/", "http://MODGATE.corp.example:80"}},
		{name: "bare host name means 80 and 443", list: "https://modgate-alias.corp.example,http://modgate-alias.corp.example,https://modgate-alias.corp.example:8443",
			wantEntries: []string{"https://modgate-alias.corp.example:8443"}, wantExcluded: []string{"https://modgate-alias.corp.example", "http://modgate-alias.corp.example"}},
		{name: "unspecified listen address", list: "http://localhost:4000,http://10.0.0.1:4000",
			wantEntries: []string{"http://10.0.0.1:4000"}, wantExcluded: []string{"http://localhost:4000"}},
		{name: "empty listen host", self: []string{":3000"}, list: "http://127.0.0.1:3000,http://mirror.example:3000",
			wantEntries: []string{"http://mirror.example:3000"}, wantExcluded: []string{"http://127.0.0.1:3000"}},
		{name: "credentials redacted", list: "https://u:s3cret@localhost:3000,direct", wantEntries: []string{"direct"},
			wantExcluded: []string{"https://u:xxxxx@localhost:3000"}},
		{name: "separators kept for the rest", list: "https://a.example|http://localhost:3000,https://b.example",
			wantEntries: []string{"https://a.example", "https://b.example"}, wantExcluded: []string{"http://localhost:3000"}},
		{name: "file URL never us", list: "file:///srv/goproxy", wantEntries: []string{"file:///srv/goproxy"}},
		{name: "no self", self: []string{}, list: "http://localhost:3000", wantEntries: []string{"http://localhost:3000"}},
		{name: "only us", list: "http://localhost:3000,http://127.0.0.1:3000",
			wantErr: "every GOPROXY entry points at modgate itself (http://localhost:3000, http://127.0.0.1:3000); set upstream.goproxy"},
		{name: "bad list", list: "htps://x", wantErr: `scheme "htps" not supported`},
		{name: "empty list", list: "", wantErr: "no upstream configured"},
		{name: "bad self", self: []string{"ftp://x"}, list: "direct", wantErr: `own address "ftp://x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := BuildOptions{Self: self}
			if tt.self != nil {
				opts.Self = tt.self
			}
			c, err := Build(tt.list, opts)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build(%q, Self: %q) = %v, want error containing %q", tt.list, opts.Self, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Build(%q, Self: %q) = %v", tt.list, opts.Self, err)
			}
			if diff := cmp.Diff(tt.wantEntries, c.Entries()); diff != "" {
				t.Errorf("Build(%q, Self: %q).Entries() (-want +got):\n%s", tt.list, opts.Self, diff)
			}
			if diff := cmp.Diff(tt.wantExcluded, c.Excluded()); diff != "" {
				t.Errorf("Build(%q, Self: %q).Excluded() (-want +got):\n%s", tt.list, opts.Self, diff)
			}
		})
	}
}

func TestBuildKeepsSeparators(t *testing.T) {
	c, err := Build(" https://a.example | https://b.example , direct ", BuildOptions{})
	if err != nil {
		t.Fatalf("Build = %v", err)
	}
	if got, want := c.String(), "https://a.example|https://b.example,direct"; got != want {
		t.Errorf("Build(...).String() = %q, want %q", got, want)
	}
}
