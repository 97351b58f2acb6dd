package upstream

import (
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseGOPROXY(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    []Entry
		wantErr string // substring of the error; "" for success
	}{
		{name: "comma and pipe", list: "https://a.example,https://b.example|https://c.example", want: []Entry{
			{URL: "https://a.example"},
			{URL: "https://b.example", FallThroughOnAnyError: true},
			{URL: "https://c.example"},
		}},
		{name: "bare host names get https", list: "a.example,b.example:8080|c.example/sub", want: []Entry{
			{URL: "https://a.example"},
			{URL: "https://b.example:8080", FallThroughOnAnyError: true},
			{URL: "https://c.example/sub"},
		}},
		{name: "direct", list: "direct", want: []Entry{{URL: "direct"}}},
		{name: "off", list: "off", want: []Entry{{URL: "off"}}},
		{name: "proxy then direct", list: "https://proxy.example,direct", want: []Entry{{URL: "https://proxy.example"}, {URL: "direct"}}},
		{name: "empty elements ignored", list: ",,https://a.example,", want: []Entry{{URL: "https://a.example"}}},
		{name: "spaces trimmed", list: " https://a.example | direct ", want: []Entry{
			{URL: "https://a.example", FallThroughOnAnyError: true}, {URL: "direct"},
		}},
		{name: "entries after direct ignored", list: "direct,https://never.example", want: []Entry{{URL: "direct"}}},
		{name: "entries after off ignored", list: "https://a.example,off|https://never.example", want: []Entry{
			{URL: "https://a.example"}, {URL: "off", FallThroughOnAnyError: true},
		}},
		{name: "file URL", list: "file:///tmp/x", want: []Entry{{URL: "file:///tmp/x"}}},
		{name: "http with credentials and path", list: "http://u:p@127.0.0.1:3000/goproxy/", want: []Entry{{URL: "http://u:p@127.0.0.1:3000/goproxy/"}}},
		{name: "empty", list: "", wantErr: "no upstream configured"},
		{name: "only separators", list: " ,|, ", wantErr: "no upstream configured"},
		{name: "bad scheme", list: "https://a.example,htps://x", wantErr: `GOPROXY entry "htps://x": scheme "htps" not supported`},
		{name: "unknown keyword", list: "noproxy", wantErr: `GOPROXY entry "noproxy": unknown keyword`},
		{name: "absolute path without scheme", list: "/tmp/x", wantErr: `GOPROXY entry "/tmp/x": missing scheme`},
		{name: "file URL with host", list: "file://tmp/x", wantErr: `GOPROXY entry "file://tmp/x": a file URL must be`},
		{name: "no host", list: "https://", wantErr: "missing host"},
		{name: "bad host", list: "https://a b.example", wantErr: `GOPROXY entry "https://a b.example"`},
		{name: "password redacted", list: "https://u:s3cret@[bad", wantErr: `GOPROXY entry "https://xxxxx@[bad"`},
		{name: "password redacted when scheme is bad", list: "htps://u:s3cret@x", wantErr: `GOPROXY entry "htps://u:xxxxx@x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGOPROXY(tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGOPROXY(%q) = %v, %v; want error containing %q", tt.list, got, err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("ParseGOPROXY(%q) error %q shows the password", tt.list, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGOPROXY(%q) = %v", tt.list, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseGOPROXY(%q) (-want +got):\n%s", tt.list, diff)
			}
		})
	}
}

func FuzzParseGOPROXY(f *testing.F) {
	for _, s := range []string{
		"", ",", "|", "direct", "off", "a,b|c", ",,a,", "htps://x", "file:///tmp/x", "file://x/y", "file:x",
		"https://proxy.example,direct", "https://u:p@h.example|http://127.0.0.1:3000,off",
		"a.example:99999", "https://[::1]:3000/p", "http://%zz", "\x00", " direct ", "https://h.example?q=1#f",
	} {
		f.Add(s)
	}
	client := NewHTTPClient(HTTPConfig{})
	f.Fuzz(func(t *testing.T, list string) {
		entries, err := ParseGOPROXY(list)
		if err != nil {
			if entries != nil {
				t.Errorf("ParseGOPROXY(%q) = %v, %v: entries with an error", list, entries, err)
			}
			return
		}
		if len(entries) == 0 {
			t.Fatalf("ParseGOPROXY(%q) = no entries and no error", list)
		}
		for i, e := range entries {
			if e.URL == "direct" || e.URL == "off" {
				if i != len(entries)-1 {
					t.Errorf("ParseGOPROXY(%q): keyword %q at %d is not last", list, e.URL, i)
				}
				continue
			}
			u, err := url.Parse(e.URL)
			if err != nil {
				t.Fatalf("ParseGOPROXY(%q): entry %q does not parse: %v", list, e.URL, err)
			}
			if u.Scheme != "https" && u.Scheme != "http" && u.Scheme != "file" {
				t.Errorf("ParseGOPROXY(%q): entry %q has scheme %q", list, e.URL, u.Scheme)
			}
			if _, err := NewProxy(e.URL, client, ProxyOptions{}); err != nil {
				t.Errorf("ParseGOPROXY(%q): NewProxy(%q) = %v", list, e.URL, err)
			}
		}
	})
}
