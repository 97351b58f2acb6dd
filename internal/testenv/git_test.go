package testenv

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestGitServer(t *testing.T) {
	s := NewGitServer(t, "u", "pw")
	r := s.Repo(t, "group/proj")
	r.Commit("one", map[string]string{"go.mod": "module corp.example.com/group/proj\n"})
	r.Tag("v1.0.0", "HEAD")

	get := func(path, user, password string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://"+GitHost+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if user != "" {
			req.SetBasicAuth(user, password)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	tests := []struct {
		name, path, user, password string
		code                       int
		says                       string
	}{
		{"refs", "/group/proj.git/info/refs?service=git-upload-pack", "u", "pw", 200, "refs/tags/v1.0.0"},
		{"wrong password", "/group/proj.git/info/refs?service=git-upload-pack", "u", "nope", 401, ""},
		{"no credentials", "/group/proj.git/info/refs?service=git-upload-pack", "", "", 401, ""},
		{"missing repository", "/group/none.git/info/refs?service=git-upload-pack", "u", "pw", 404, ""},
		{"go-import", "/group/proj/sub/v2?go-get=1", "u", "pw", 200,
			`<meta name="go-import" content="corp.example.com/group/proj git https://corp.example.com/group/proj.git">`},
		{"go-import of nothing", "/other?go-get=1", "u", "pw", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(tt.path, tt.user, tt.password)
			if code != tt.code || !strings.Contains(body, tt.says) {
				t.Errorf("GET %s = %d %q, want %d containing %q", tt.path, code, body, tt.code, tt.says)
			}
		})
	}
	if n := s.UploadPacks("group/proj"); n != 0 {
		t.Errorf("UploadPacks = %d before any clone", n)
	}
}
