package auth

import (
	"errors"
	"io/fs"
	"testing"
)

func TestAuthorize(t *testing.T) {
	anonymous := Identity{Name: "anonymous", Method: MethodAnonymous}
	teamA := Identity{Name: "ci-a", Method: MethodToken, Scopes: mustScopes(t, "read:corp.example.com/team-a/*")}
	release := Identity{Name: "release", Method: MethodToken, Scopes: mustScopes(t, "publish:corp.example.com/team-a")}
	admin := Identity{Name: "platform", Method: MethodMTLS, Scopes: mustScopes(t, "admin")}
	open := Config{Anonymous: true, AnonymousScopes: mustScopes(t, "read:public.example")}
	closed := Config{AnonymousScopes: mustScopes(t, "read:public.example")} // scopes ignored when disabled

	hidden := []error{fs.ErrNotExist, ErrHidden}
	tests := []struct {
		name    string
		cfg     Config
		id      Identity
		perm    Permission
		module  string
		want    []error // every one must match; nil means allowed
		notWant error
		msg     string
	}{
		{name: "anonymous reads public", cfg: open, id: anonymous, perm: Read, module: "public.example/x"},
		{name: "anonymous reads private", cfg: open, id: anonymous, perm: Read, module: "corp.example.com/team-a/lib",
			want: []error{ErrUnauthenticated}, notWant: fs.ErrNotExist,
			msg: "anonymous clients may not read corp.example.com/team-a/lib; send a token as the password (.netrc or GOAUTH): authentication required"},
		{name: "anonymous admin", cfg: open, id: anonymous, perm: Admin, want: []error{ErrUnauthenticated}},
		{name: "anonymous disabled", cfg: closed, id: anonymous, perm: Read, module: "public.example/x", want: []error{ErrUnauthenticated}},
		{name: "token reads its prefix", cfg: open, id: teamA, perm: Read, module: "corp.example.com/team-a/lib"},
		{name: "token reads another prefix", cfg: open, id: teamA, perm: Read, module: "corp.example.com/team-b/lib",
			want: hidden, notWant: ErrForbidden, msg: "corp.example.com/team-b/lib: not found"},
		{name: "token keeps anonymous scopes", cfg: open, id: teamA, perm: Read, module: "public.example/x"},
		{name: "token without anonymous", cfg: closed, id: teamA, perm: Read, module: "public.example/x", want: hidden},
		{name: "read token publishes", cfg: open, id: teamA, perm: Publish, module: "corp.example.com/team-a/lib",
			want: []error{ErrForbidden}, notWant: fs.ErrNotExist,
			msg: `token "ci-a" may not publish corp.example.com/team-a/lib: forbidden`},
		{name: "read token on admin endpoint", cfg: open, id: teamA, perm: Admin, want: []error{ErrForbidden},
			msg: `token "ci-a" may not administer modgate: forbidden`},
		{name: "read token, no module", cfg: open, id: teamA, perm: Read, want: []error{ErrForbidden}},
		{name: "publish implies read", cfg: closed, id: release, perm: Read, module: "corp.example.com/team-a/lib"},
		{name: "publish in prefix", cfg: closed, id: release, perm: Publish, module: "corp.example.com/team-a/lib/v2"},
		{name: "publish outside prefix", cfg: closed, id: release, perm: Publish, module: "corp.example.com/team-b", want: []error{ErrForbidden}},
		{name: "admin reads anything", cfg: closed, id: admin, perm: Read, module: "corp.example.com/team-b/lib"},
		{name: "admin publishes anything", cfg: closed, id: admin, perm: Publish, module: "x.example/y"},
		{name: "admin administers", cfg: closed, id: admin, perm: Admin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg, Deps{})
			if err != nil {
				t.Fatal(err)
			}
			err = a.Authorize(tt.id, tt.perm, tt.module)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Authorize(%s, %v, %q) = %v, want nil", tt.id.Name, tt.perm, tt.module, err)
				}
				return
			}
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Authorize(%s, %v, %q) = %v, want it to match %v", tt.id.Name, tt.perm, tt.module, err, w)
				}
			}
			if tt.notWant != nil && errors.Is(err, tt.notWant) {
				t.Errorf("Authorize(%s, %v, %q) = %v, which matches %v", tt.id.Name, tt.perm, tt.module, err, tt.notWant)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Authorize(%s, %v, %q) says %q, want %q", tt.id.Name, tt.perm, tt.module, err, tt.msg)
			}
		})
	}
}
