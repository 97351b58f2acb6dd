package goproxy

import (
	"errors"
	"io/fs"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/storage"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name string
		path string
		want Request // Path is filled in from path
		bad  bool
		// notFound: a well-formed request for a version that cannot
		// exist for the module; an error matching fs.ErrNotExist.
		notFound bool
	}{
		{name: "list", path: "example.com/a/@v/list", want: Request{Kind: KindList, Module: "example.com/a"}},
		{name: "latest", path: "example.com/a/@latest", want: Request{Kind: KindLatest, Module: "example.com/a"}},
		{name: "info", path: "example.com/a/@v/v1.2.3.info", want: Request{Kind: KindInfo, Module: "example.com/a", Version: "v1.2.3"}},
		{name: "mod", path: "example.com/a/@v/v1.2.3.mod", want: Request{Kind: KindMod, Module: "example.com/a", Version: "v1.2.3"}},
		{name: "zip", path: "example.com/a/@v/v1.2.3.zip", want: Request{Kind: KindZip, Module: "example.com/a", Version: "v1.2.3"}},
		{name: "escaped upper case", path: "github.com/!azure/sdk/@v/v1.0.0.mod", want: Request{Kind: KindMod, Module: "github.com/Azure/sdk", Version: "v1.0.0"}},
		{name: "escaped version", path: "example.com/a/@v/v1.0.0-!r!c1.info", want: Request{Kind: KindInfo, Module: "example.com/a", Version: "v1.0.0-RC1"}},
		{name: "incompatible", path: "example.com/a/@v/v2.0.0+incompatible.zip", want: Request{Kind: KindZip, Module: "example.com/a", Version: "v2.0.0+incompatible"}},
		{name: "major suffix", path: "example.com/a/v2/@v/v2.1.0.mod", want: Request{Kind: KindMod, Module: "example.com/a/v2", Version: "v2.1.0"}},
		{name: "gopkg.in", path: "gopkg.in/yaml.v3/@v/v3.0.1.mod", want: Request{Kind: KindMod, Module: "gopkg.in/yaml.v3", Version: "v3.0.1"}},
		{name: "pseudo-version", path: "example.com/a/@v/v0.0.0-20240101000000-abcdefabcdef.zip", want: Request{Kind: KindZip, Module: "example.com/a", Version: "v0.0.0-20240101000000-abcdefabcdef"}},
		{name: "branch query", path: "example.com/a/@v/main.info", want: Request{Kind: KindInfo, Module: "example.com/a", Version: "main", Query: true}},
		{name: "commit query", path: "example.com/a/@v/abc123def.info", want: Request{Kind: KindInfo, Module: "example.com/a", Version: "abc123def", Query: true}},
		{name: "semver prefix query", path: "example.com/a/@v/v1.2.info", want: Request{Kind: KindInfo, Module: "example.com/a", Version: "v1.2", Query: true}},
		{name: "major mismatch info is a query", path: "github.com/docker/docker/@v/v28.5.2.info", want: Request{Kind: KindInfo, Module: "github.com/docker/docker", Version: "v28.5.2", Query: true}},
		{name: "toolchain module", path: "golang.org/toolchain/@v/v0.0.1-go1.22.0.linux-amd64.zip", want: Request{Kind: KindZip, Module: "golang.org/toolchain", Version: "v0.0.1-go1.22.0.linux-amd64"}},

		{name: "empty", path: "", bad: true},
		{name: "no @v", path: "example.com/a", bad: true},
		{name: "no dot in first element", path: "localhost/a/@v/list", bad: true},
		{name: "unescaped upper case", path: "github.com/Azure/sdk/@v/list", bad: true},
		{name: "dot-dot", path: "example.com/../etc/@v/list", bad: true},
		{name: "leading slash element", path: "/example.com/a/@v/list", bad: true},
		{name: "unknown file", path: "example.com/a/@v/v1.0.0.tar", bad: true},
		{name: "empty version", path: "example.com/a/@v/.zip", bad: true},
		{name: "non-canonical zip", path: "example.com/a/@v/main.zip", notFound: true},
		{name: "non-canonical mod", path: "example.com/a/@v/v1.2.mod", notFound: true},
		{name: "major mismatch mod", path: "example.com/a/@v/v2.0.0.mod", notFound: true},
		{name: "major mismatch zip", path: "github.com/docker/docker/@v/v28.5.2.zip", notFound: true},
		{name: "v2 path with v1", path: "example.com/a/v2/@v/v1.0.0.mod", notFound: true},
		{name: "slash in version", path: "example.com/a/@v/feature/x.info", bad: true},
		{name: "bad version escape", path: "example.com/a/@v/V1.0.0.info", bad: true},
		{name: "query with space", path: "example.com/a/@v/a b.info", notFound: true},
		{name: "query latest", path: "example.com/a/@v/latest.info", notFound: true},
		{name: "nul byte", path: "example.com/a\x00/@v/list", bad: true},
		{name: "trailing slash", path: "example.com/a/@v/list/", bad: true},
		{name: "latest with suffix", path: "example.com/a/@latest/x", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRequest(tt.path)
			if tt.notFound {
				if err == nil || !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrBadRequest) {
					t.Fatalf("ParseRequest(%q) = %+v, %v; want an error matching only fs.ErrNotExist", tt.path, got, err)
				}
				return
			}
			if tt.bad {
				if err == nil {
					t.Fatalf("ParseRequest(%q) = %+v, want error", tt.path, got)
				}
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("ParseRequest(%q) error %v does not match ErrBadRequest", tt.path, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRequest(%q): %v", tt.path, err)
			}
			tt.want.Path = tt.path
			if got != tt.want {
				t.Errorf("ParseRequest(%q) = %+v, want %+v", tt.path, got, tt.want)
			}
		})
	}
}

// FuzzParseRequest checks that no input panics, that every accepted request
// names a valid module, and that canonical file requests round-trip through
// the x/mod escaping exactly (so their Path is safe as a storage key).
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"example.com/a/@v/list", "example.com/a/@latest", "example.com/!a/@v/v1.0.0.zip",
		"example.com/a/@v/main.info", "example.com/a/v2/@v/v2.0.0.mod", "a/@v/list",
		"example.com/../x/@v/v1.0.0.zip", "example.com/a/@v/v1.0.0+incompatible.zip",
		"example.com/a/@v/@v/v1.0.0.zip", "%2e%2e/@v/list", "example.com/a/@v/v1.0.0-!!.zip",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParseRequest(p)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("ParseRequest(%q) error %v does not match ErrBadRequest", p, err)
			}
			return
		}
		if err := module.CheckPath(r.Module); err != nil {
			t.Fatalf("ParseRequest(%q) accepted invalid module %q: %v", p, r.Module, err)
		}
		if err := storage.CheckName(r.Path); err != nil {
			t.Fatalf("ParseRequest(%q).Path is not a safe storage key: %v", p, err)
		}
		if r.Kind >= KindInfo && !r.Query {
			esc, _ := module.EscapePath(r.Module)
			ev, _ := module.EscapeVersion(r.Version)
			want := esc + "/@v/" + ev + "." + r.Kind.String()
			if r.Path != want {
				t.Fatalf("ParseRequest(%q).Path = %q, does not round-trip (want %q)", p, r.Path, want)
			}
		}
	})
}

func BenchmarkParseRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest("github.com/!azure/azure-sdk-for-go/sdk/azcore/@v/v1.11.1.zip"); err != nil {
			b.Fatal(err)
		}
	}
}
