package sumdb

import (
	"crypto/rand"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestParseGOSUMDB(t *testing.T) {
	_, vkey := newTestKey(t)
	_, hostPathKey, err := note.GenerateKey(rand.Reader, "sum.example.com/db")
	if err != nil {
		t.Fatal(err)
	}
	_, portKey, err := note.GenerateKey(rand.Reader, "127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	_, slashKey, err := note.GenerateKey(rand.Reader, "sum.test/")
	if err != nil {
		t.Fatal(err)
	}
	_, dotKey, err := note.GenerateKey(rand.Reader, "sum.test/.hidden")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		value   string
		want    DB
		wantErr string // substring; "" means success
	}{
		{name: "off", value: "off", want: DB{}},
		{name: "key", value: vkey, want: DB{Name: "sum.test", Key: vkey}},
		{name: "key and url", value: vkey + " https://sum.example.com/base", want: DB{Name: "sum.test", Key: vkey, URL: "https://sum.example.com/base"}},
		{name: "extra spaces", value: "  " + vkey + "\t http://127.0.0.1:9/x ", want: DB{Name: "sum.test", Key: vkey, URL: "http://127.0.0.1:9/x"}},
		{name: "host and path name", value: hostPathKey, want: DB{Name: "sum.example.com/db", Key: hostPathKey}},
		{name: "host and port name", value: portKey, want: DB{Name: "127.0.0.1:8080", Key: portKey}},
		{name: "empty", value: " ", wantErr: "empty value"},
		{name: "unknown name", value: "sum.test", wantErr: `sumdb.gosumdb: unknown checksum database "sum.test": give its verifier key as name+key`},
		{name: "unknown name with url", value: "sum.test https://sum.example.com", wantErr: "unknown checksum database"},
		{name: "too many fields", value: vkey + " https://a.example https://b.example", wantErr: "too many fields"},
		{name: "bad key", value: "sum.test+12345678+AAAA", wantErr: "invalid verifier key"},
		{name: "bad url scheme", value: vkey + " ftp://sum.example.com", wantErr: "invalid URL"},
		{name: "relative url", value: vkey + " /sumdb", wantErr: "invalid URL"},
		{name: "name with trailing slash", value: slashKey, wantErr: "must be host[/path]"},
		{name: "name with dot element", value: dotKey, wantErr: "must be host[/path]"},
		{name: "off with url", value: "off https://sum.example.com", wantErr: "unknown checksum database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGOSUMDB(tt.value)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseGOSUMDB(%q) = %+v, %v; want error containing %q", tt.value, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseGOSUMDB(%q) = %+v, %v; want %+v, nil", tt.value, got, err, tt.want)
			}
			if got.Off() != (tt.value == "off") {
				t.Errorf("ParseGOSUMDB(%q).Off() = %v", tt.value, got.Off())
			}
			if tt.value != "off" {
				// String gives back an equivalent GOSUMDB value.
				again, err := ParseGOSUMDB(got.String())
				if err != nil || again != got {
					t.Errorf("ParseGOSUMDB(%q) = %+v, %v; want %+v", got.String(), again, err, got)
				}
			}
		})
	}
}

// TestParseGOSUMDBKnown checks the well-known names resolve to valid keys
// for themselves (or, for an alias, for the database they alias, at a URL).
func TestParseGOSUMDBKnown(t *testing.T) {
	for _, e := range knownDBs() {
		t.Run(e.name, func(t *testing.T) {
			got, err := ParseGOSUMDB(e.name)
			if err != nil {
				t.Fatalf("ParseGOSUMDB(%q): %v", e.name, err)
			}
			if got.Key != e.key || got.URL != e.url {
				t.Errorf("ParseGOSUMDB(%q) = %+v; want key %q, url %q", e.name, got, e.key, e.url)
			}
			if e.url == "" && got.Name != e.name {
				t.Errorf("ParseGOSUMDB(%q).Name = %q; want %q", e.name, got.Name, e.name)
			}
			withURL, err := ParseGOSUMDB(e.name + " https://mirror.example.com/sumdb")
			if err != nil || withURL.URL != "https://mirror.example.com/sumdb" || withURL.Key != e.key {
				t.Errorf("ParseGOSUMDB(%q + URL) = %+v, %v; want key %q at the URL", e.name, withURL, err, e.key)
			}
		})
	}
}
