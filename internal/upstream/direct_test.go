package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newTestDirect(t *testing.T, client *http.Client, opts DirectOptions) *Direct {
	t.Helper()
	d, err := NewDirect(client, opts)
	if err != nil {
		t.Fatalf("NewDirect = %v", err)
	}
	return d
}

func TestDirectSumdb(t *testing.T) {
	var gotPaths []string
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		gotPaths = append(gotPaths, r.URL.Path)
		switch r.URL.Path {
		case "/prefix/latest":
			io.WriteString(w, "sum.test\n1\nhash\n")
		case "/prefix/lookup/example.com/m@v1.0.0":
			io.WriteString(w, "record")
		case "/prefix/broken":
			http.Error(w, "db down", http.StatusServiceUnavailable)
		default:
			http.Error(w, "not found: no such thing", http.StatusNotFound)
		}
	})
	var rec recorder
	d := newTestDirect(t, testClient(t, HTTPConfig{}), DirectOptions{
		SumdbURLs:    map[string]string{"sum.test": srv.URL + "/prefix"},
		ProxyOptions: ProxyOptions{Retries: -1, Observe: rec.observe},
	})
	if d.String() != "direct" {
		t.Errorf("String() = %q, want direct", d.String())
	}
	tests := []struct {
		name string
		path string
		want string // body, or error class
	}{
		{name: "supported", path: "sumdb/sum.test/supported", want: ""},
		{name: "supported for any plausible name", path: "sumdb/other.example/supported", want: ""},
		{name: "latest", path: "sumdb/sum.test/latest", want: "sum.test\n1\nhash\n"},
		{name: "lookup", path: "sumdb/sum.test/lookup/example.com/m@v1.0.0", want: "record"},
		{name: "missing", path: "sumdb/sum.test/tile/8/0/000", want: "not-found"},
		{name: "failing", path: "sumdb/sum.test/broken", want: "unavailable"},
		{name: "no file", path: "sumdb/sum.test", want: "not-found"},
		{name: "bad name", path: "sumdb/Evil@host/latest", want: "not-found"},
		{name: "name with port", path: "sumdb/sum.test:8080/latest", want: "not-found"},
		{name: "module path", path: "example.com/m/@v/list", want: "not-found"},
		{name: "invalid path", path: "sumdb/../x", want: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := d.Fetch(t.Context(), tt.path)
			got := errorClass(err)
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got = string(b)
				if resp.Upstream != "direct" {
					t.Errorf("Fetch(%q).Upstream = %q, want direct", tt.path, resp.Upstream)
				}
			}
			if got != tt.want {
				t.Errorf("Fetch(%q) = %q (err %v), want %q", tt.path, got, err, tt.want)
			}
		})
	}
	want := []string{"/prefix/latest", "/prefix/lookup/example.com/m@v1.0.0", "/prefix/tile/8/0/000", "/prefix/broken"}
	if diff := cmp.Diff(want, gotPaths); diff != "" {
		t.Errorf("sumdb server requests (-want +got):\n%s", diff)
	}
	wantObs := []string{"direct ok", "direct ok", "direct not_found", "direct error"}
	if diff := cmp.Diff(wantObs, rec.got()); diff != "" {
		t.Errorf("Observe calls (-want +got):\n%s", diff)
	}
}

func TestDirectModuleMessage(t *testing.T) {
	d := newTestDirect(t, nil, DirectOptions{})
	_, err := d.Fetch(t.Context(), "example.com/m/@v/list")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "fetching modules from version control is not configured") {
		t.Errorf("Fetch(module) = %v, want not found saying fetching from version control is not configured", err)
	}
}

// roundTripFunc lets a test see the requests a client makes without
// any network.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDirectSumdbDefaultURL(t *testing.T) {
	var got []string
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.URL.String())
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("x")), ContentLength: 1, Request: r}, nil
	})}
	d := newTestDirect(t, client, DirectOptions{})
	resp, err := d.Fetch(t.Context(), "sumdb/sum.test/lookup/example.com/!m@v1.0.0")
	if err != nil {
		t.Fatalf("Fetch = %v", err)
	}
	resp.Body.Close()
	if diff := cmp.Diff([]string{"https://sum.test/lookup/example.com/%21m@v1.0.0"}, got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

func TestDirectSumdbCredentials(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "s3cret" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok")
	})
	base := strings.Replace(srv.URL, "http://", "http://u:s3cret@", 1)
	d := newTestDirect(t, testClient(t, HTTPConfig{}), DirectOptions{SumdbURLs: map[string]string{"sum.test": base}})
	resp, err := d.Fetch(t.Context(), "sumdb/sum.test/latest")
	if err != nil {
		t.Fatalf("Fetch with credentials = %v", err)
	}
	resp.Body.Close()
}

func TestNewDirectBadOverride(t *testing.T) {
	for _, raw := range []string{"htps://x", "file:///tmp/x", "https://u:s3cret@[bad"} {
		_, err := NewDirect(nil, DirectOptions{SumdbURLs: map[string]string{"sum.test": raw}})
		if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "sum.test") {
			t.Errorf("NewDirect(SumdbURLs: %q) = %v, want an error naming the database and no password", raw, err)
		}
	}
}

func TestOff(t *testing.T) {
	var off Off
	for _, path := range []string{"example.com/m/@v/list", "sumdb/sum.test/supported"} {
		_, err := off.Fetch(t.Context(), path)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "module lookup disabled by GOPROXY=off") {
			t.Errorf("Off.Fetch(%q) = %v, want not found saying lookup is disabled", path, err)
		}
	}
	if off.String() != "off" {
		t.Errorf("Off.String() = %q, want off", off.String())
	}
}

// moduleSource answers every path with its own name, to see what Direct
// hands it.
type moduleSource struct{ paths []string }

func (m *moduleSource) String() string { return "vcs" }

func (m *moduleSource) Fetch(_ context.Context, path string) (*Response, error) {
	m.paths = append(m.paths, path)
	if strings.Contains(path, "missing") {
		return nil, fmt.Errorf("no such module: %w", fs.ErrNotExist)
	}
	return &Response{Body: io.NopCloser(strings.NewReader("from vcs")), Size: 8, Upstream: "vcs"}, nil
}

func TestDirectModules(t *testing.T) {
	mods := &moduleSource{}
	d := newTestDirect(t, nil, DirectOptions{Modules: mods})
	resp, err := d.Fetch(t.Context(), "example.com/m/@v/v1.0.0.zip")
	if err != nil {
		t.Fatalf("Fetch(module) = %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "from vcs" || resp.Upstream != "direct" {
		t.Errorf("Fetch(module) = %q from %q, want the module source's answer from direct", body, resp.Upstream)
	}
	if _, err := d.Fetch(t.Context(), "example.com/missing/@v/list"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Fetch(missing module) = %v, want not found", err)
	}
	// Checksum database paths never reach the module source.
	resp, err = d.Fetch(t.Context(), "sumdb/sum.test/supported")
	if err != nil {
		t.Fatalf("Fetch(supported) = %v", err)
	}
	resp.Body.Close()
	if _, err := d.Fetch(t.Context(), "example.com/../x/@v/list"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Fetch(unclean path) = %v, want invalid", err)
	}
	want := []string{"example.com/m/@v/v1.0.0.zip", "example.com/missing/@v/list"}
	if diff := cmp.Diff(want, mods.paths); diff != "" {
		t.Errorf("paths handed to the module source (-want +got):\n%s", diff)
	}
}
