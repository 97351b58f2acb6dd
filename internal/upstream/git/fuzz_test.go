package git

import (
	"path"
	"strings"
	"testing"
)

// Fuzz targets for what Git servers and web servers send: ref
// advertisements and go-import meta tags. Their seed corpora run as
// ordinary tests; to fuzz: go test -fuzz FuzzParseAdvertisement ./internal/upstream/git

func FuzzParseAdvertisement(f *testing.F) {
	h := func(c byte) string { return strings.Repeat(string(c), 40) }
	for _, seed := range []string{
		pkt("# service=git-upload-pack\n") + "0000" +
			pkt(h('a')+" HEAD\x00multi_ack symref=HEAD:refs/heads/main\n") +
			pkt(h('a')+" refs/heads/main\n") +
			pkt(h('b')+" refs/tags/v1.0.0\n") +
			pkt(h('c')+" refs/tags/v1.0.0^{}\n") +
			pkt(h('d')+" refs/pull/1/head\n") + "0000",
		pkt("# service=git-upload-pack\n") + "0000" + pkt(strings.Repeat("0", 40)+" capabilities^{}\x00agent=git\n") + "0000",
		pkt("version 1\n") + pkt(strings.Repeat("e", 64)+" refs/tags/sub/v0.1.0\n") + "0000",
		pkt(h('a')+" refs/tags/v1.0.0^{}\n") + pkt(h('b')+" refs/tags/v1.0.0\n") + "0000",
		pkt(h('a')+" refs/tags/../../x\n") + pkt(h('a')+" refs/heads/a b\n") + pkt(h('a')+" refs/tags/v1\nx\n") + "0000",
		pkt("ERR access denied\n"),
		pkt(h('A') + " HEAD\n"),
		"0003", "ffff", "zzzz", "<html>login</html>", "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		refs, err := parseAdvertisement(strings.NewReader(string(data)))
		if err != nil {
			if refs != nil {
				t.Errorf("parseAdvertisement returned refs %v with error %v", refs, err)
			}
			return
		}
		for name, hash := range refs {
			if name != "HEAD" && !(strings.HasPrefix(name, "refs/heads/") || strings.HasPrefix(name, "refs/tags/")) || !validRefName(name) && name != "HEAD" {
				t.Errorf("kept ref name %q", name)
			}
			if strings.HasSuffix(name, "^{}") {
				t.Errorf("peel marker %q left in the refs", name)
			}
			if !isHex(hash) || len(hash) != 40 && len(hash) != 64 {
				t.Errorf("ref %q has hash %q, want 40 or 64 lower-case hex digits", name, hash)
			}
		}
		// The summary is stable: the same refs give the same sum.
		if refs.sum() != refs.sum() {
			t.Error("refMap.sum is not deterministic")
		}
	})
}

func FuzzMetaImports(f *testing.F) {
	for _, seed := range []string{
		`<!DOCTYPE html><html><head><meta name="go-import" content="corp.example.com/a git https://corp.example.com/a.git"></head><body></body></html>`,
		`<html><head><meta name="go-import" content="example.com/m mod https://proxy.example"><meta name="go-import" content="example.com/m git https://example.com/m sub/dir"></head>`,
		`<meta name="GO-IMPORT" content="a.example/x hg https://a.example/x">`,
		`<?xml version="1.0" encoding="ISO-8859-1"?><html><head><meta name="go-import" content="a b c"></head></html>`,
		`<html><body><meta name="go-import" content="after body git https://x"></body></html>`,
		`<head><meta name="go-import" content="x.example/p git https://x.example/p ../../etc"><meta name="go-import" content="too few"></head>`,
		`<meta name=go-import content='x.example git https://x.example'>`,
		"<head><meta name=\"go-import\" content=\"\x00 \x01 \x02\">",
		"", "<", "<<<>>>", "&amp;&#0;",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		imports, err := parseMetaGoImports(strings.NewReader(string(data)))
		if err != nil {
			return
		}
		for _, mi := range imports {
			for _, field := range []string{mi.prefix, mi.vcs, mi.repoRoot} {
				if field == "" || strings.ContainsAny(field, " \t\r\n") {
					t.Errorf("meta import %+v has an empty field or whitespace in one", mi)
				}
			}
			if mi.vcs == "mod" {
				t.Errorf("meta import %+v: mod entries must be dropped", mi)
			}
			if mi.subdir != "" && path.Clean(mi.subdir) != mi.subdir {
				t.Errorf("meta import %+v: subdirectory not clean", mi)
			}
		}
	})
}

// FuzzStaticLocation checks the go command's static rules on any module
// path: a repository root is always a prefix of the path and its URL https.
func FuzzStaticLocation(f *testing.F) {
	for _, seed := range []string{
		"github.com/a/b", "github.com/a/b/c/d", "github.com/a", "bitbucket.org/x/y.git",
		"example.com/r.git/sub", "example.com/a.hg", "x.example/y/z", "chiselapp.com/user/u/repository/r",
		"git.apache.org/thrift.git/lib", "a.b/c.git.git", "", "/.git",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, mod string) {
		loc, ok, err := staticLocation(mod)
		if err != nil || !ok {
			if ok {
				t.Errorf("staticLocation(%q) = ok with error %v", mod, err)
			}
			return
		}
		if !hasPathPrefix(mod, loc.root) {
			t.Errorf("staticLocation(%q): root %q is not a prefix of the path", mod, loc.root)
		}
		if !strings.HasPrefix(loc.url, "https://") {
			t.Errorf("staticLocation(%q): URL %q is not https", mod, loc.url)
		}
	})
}
