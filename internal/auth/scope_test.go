package auth

import (
	"strings"
	"testing"
)

func TestParseScope(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Scope
		wantStr string
		wantErr string
	}{
		{name: "read pattern", in: "read:corp.example.com/team-a/*", want: Scope{Read, "corp.example.com/team-a/*"}, wantStr: "read:corp.example.com/team-a/*"},
		{name: "publish", in: "publish:corp.example.com", want: Scope{Publish, "corp.example.com"}, wantStr: "publish:corp.example.com"},
		{name: "read everything", in: "read", want: Scope{Read, "*"}, wantStr: "read:*"},
		{name: "read empty pattern", in: "read:", want: Scope{Read, "*"}, wantStr: "read:*"},
		{name: "admin", in: "admin", want: Scope{Admin, "*"}, wantStr: "admin"},
		{name: "admin star", in: "admin:*", want: Scope{Admin, "*"}, wantStr: "admin"},
		{name: "admin with pattern", in: "admin:corp.example.com", wantErr: `scope "admin:corp.example.com": admin applies to every module; write "admin"`},
		{name: "metrics", in: "metrics", want: Scope{Metrics, "*"}, wantStr: "metrics"},
		{name: "metrics with pattern", in: "metrics:corp.example.com", wantErr: `metrics is about no module`},
		{name: "unknown permission", in: "write:x.example", wantErr: `unknown permission "write"`},
		{name: "empty", in: "", wantErr: `unknown permission ""`},
		{name: "bad glob", in: "read:x.example/[", wantErr: `pattern "x.example/[" is not a valid glob`},
		{name: "comma", in: "read:a.example,b.example", wantErr: "contains a comma"},
		{name: "space", in: "read:a.example b", wantErr: "contains a space"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScope(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseScope(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseScope(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if s := got.String(); s != tt.wantStr {
				t.Errorf("ParseScope(%q).String() = %q, want %q", tt.in, s, tt.wantStr)
			}
			if again, err := ParseScope(got.String()); err != nil || again != got {
				t.Errorf("ParseScope(%q) = %v, %v; want %v (round trip)", got.String(), again, err, got)
			}
		})
	}
}

func TestScopeAllows(t *testing.T) {
	teamA := Scope{Read, "corp.example.com/team-a/*"}
	tests := []struct {
		name   string
		scope  Scope
		perm   Permission
		module string
		want   bool
	}{
		{"read in pattern", teamA, Read, "corp.example.com/team-a/lib", true},
		{"read below pattern", teamA, Read, "corp.example.com/team-a/lib/v2", true},
		{"read other team", teamA, Read, "corp.example.com/team-b/lib", false},
		{"read prefix lookalike", Scope{Read, "corp.example.com/team-a"}, Read, "corp.example.com/team-ab", false},
		{"read cannot publish", teamA, Publish, "corp.example.com/team-a/lib", false},
		{"read not admin", Scope{Read, "*"}, Admin, "", false},
		{"publish implies read", Scope{Publish, "corp.example.com"}, Read, "corp.example.com/x", true},
		{"publish elsewhere", Scope{Publish, "corp.example.com"}, Publish, "other.example/x", false},
		{"admin everywhere", Scope{Admin, "*"}, Publish, "other.example/x", true},
		{"admin endpoint", Scope{Admin, "*"}, Admin, "", true},
		{"star matches all", Scope{Read, "*"}, Read, "a.example/b/c", true},
		{"star no module", Scope{Read, "*"}, Read, "", true},
		{"pattern no module", teamA, Read, "", false},
		// A grant does not stretch to other spellings (see Allows).
		{"case variant of host not granted", teamA, Read, "Corp.example.com/team-a/lib", false},
		{"case variant of team not granted", teamA, Read, "corp.example.com/Team-A/lib", false},
		{"case variant of literal not granted", Scope{Read, "corp.example.com/team-a"}, Read, "corp.example.com/TEAM-A", false},
		{"metrics", Scope{Metrics, "*"}, Metrics, "", true},
		{"admin implies metrics", Scope{Admin, "*"}, Metrics, "", true},
		{"read not metrics", Scope{Read, "*"}, Metrics, "", false},
		{"publish not metrics", Scope{Publish, "*"}, Metrics, "", false},
		{"metrics cannot read", Scope{Metrics, "*"}, Read, "a.example/b", false},
		{"metrics cannot read anything", Scope{Metrics, "*"}, Read, "", false},
		{"metrics cannot publish", Scope{Metrics, "*"}, Publish, "a.example/b", false},
		{"metrics not admin", Scope{Metrics, "*"}, Admin, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.scope.Allows(tt.perm, tt.module); got != tt.want {
				t.Errorf("%v.Allows(%v, %q) = %v, want %v", tt.scope, tt.perm, tt.module, got, tt.want)
			}
		})
	}
}
