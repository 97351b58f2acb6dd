package vulndb

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modgate/modgate/internal/upstream"
)

// TestSyncRedirectRefused: a database server that redirects to another
// port on the loopback interface does not get the sync to follow, with
// the default client or the caller's; a listed host is followed.
func TestSyncRedirectRefused(t *testing.T) {
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		io.WriteString(w, "{}")
	}))
	t.Cleanup(other.Close)
	db := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	t.Cleanup(db.Close)

	for _, client := range []*http.Client{nil, {}} {
		s, err := NewSyncer(SyncConfig{URL: db.URL, Dir: t.TempDir(), Client: client})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Sync(t.Context())
		if !errors.Is(err, upstream.ErrRedirect) || !strings.Contains(err.Error(), "another host") {
			t.Errorf("Sync from a redirecting server (client %v) = %v, want a refused redirect", client, err)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests, want none", n)
	}

	s, err := NewSyncer(SyncConfig{URL: db.URL, Dir: t.TempDir(), RedirectHosts: []string{strings.TrimPrefix(other.URL, "http://")}})
	if err != nil {
		t.Fatal(err)
	}
	s.Sync(t.Context()) // "{}" is no database; only the redirect matters here
	if otherHits.Load() == 0 {
		t.Error("a redirect to a listed host was not followed")
	}
}
