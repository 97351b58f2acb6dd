package goproxy

import (
	"testing"

	"golang.org/x/mod/module"
)

// unescapeSeeds are escaped paths and versions, valid and not.
var unescapeSeeds = []string{
	"example.com/m", "example.com/!corp/lib", "example.com/Corp/lib", "example.com/!!x", "example.com/x!",
	"github.com/x/y/v2", "gopkg.in/yaml.v3", "example.com/é", "example.com/a..b", "example.com/.x",
	"example.com/m/", "/example.com", "example.com//m", "example", "example.com/!c!o!r!p",
	"v1.2.3", "v1.2.3-!r!c1", "v1.2.3-RC1", "v0.0.0-20240101000000-abcdefabcdef", "v2.0.0+incompatible",
	"v1.0.0/x", "", ".", "..", "v1.0.0\x00", "v1.0.0!", "master", "v1.2.3+build.1",
}

// FuzzUnescape checks that the shortcuts answer exactly as the x/mod
// functions they stand for, for every input.
func FuzzUnescape(f *testing.F) {
	for _, s := range unescapeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkUnescape(t, s)
	})
}

func TestUnescapeSeeds(t *testing.T) {
	for _, s := range unescapeSeeds {
		checkUnescape(t, s)
	}
}

func checkUnescape(t *testing.T, s string) {
	t.Helper()
	want, wantErr := module.UnescapePath(s)
	got, gotErr := unescapePath(s)
	if got != want || (gotErr == nil) != (wantErr == nil) {
		t.Errorf("unescapePath(%q) = %q, %v; module.UnescapePath = %q, %v", s, got, gotErr, want, wantErr)
	}
	want, wantErr = module.UnescapeVersion(s)
	got, gotErr = unescapeVersion(s)
	if got != want || (gotErr == nil) != (wantErr == nil) {
		t.Errorf("unescapeVersion(%q) = %q, %v; module.UnescapeVersion = %q, %v", s, got, gotErr, want, wantErr)
	}
}

// BenchmarkParseRequestLower parses a path without upper-case letters, the
// common case (BenchmarkParseRequest has one).
func BenchmarkParseRequestLower(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest("github.com/aws/aws-sdk-go-v2/service/s3/@v/v1.47.7.zip"); err != nil {
			b.Fatal(err)
		}
	}
}
