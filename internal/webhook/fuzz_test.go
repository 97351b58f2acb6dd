package webhook

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// FuzzParsePayload feeds untrusted webhook payloads (after the signature
// check, but still whatever the Git server, or whoever holds the secret,
// sends) to every provider's parser, as JSON and as the form GitHub and
// Gitea can send. No input may panic, and every Event accepted must be
// one the handler can act on safely: a full ref, a tag only for a tag
// ref, no commit for a deleted ref, and at least one repository URL,
// none empty, none twice. The seeds (the recorded payloads in testdata)
// run as an ordinary test.
func FuzzParsePayload(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seed payloads in testdata: %v", err)
	}
	events := map[string]string{"github": "push", "gitea": "push", "gitlab": "Push Hook"}
	for _, name := range seeds {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		base := filepath.Base(name)
		event := events[strings.SplitN(base, "-", 2)[0]]
		switch {
		case strings.Contains(base, "create"):
			event = "create"
		case strings.Contains(base, "gitlab-tag"):
			event = "Tag Push Hook"
		case strings.Contains(base, "ping"):
			event = "ping"
		}
		f.Add(event, data, false)
		f.Add(event, data, true)
	}
	f.Add("System Hook", []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1.0.0","after":"0000","project":{"git_http_url":"https://g.example/a.git"}}`), false)
	f.Add("create", []byte(`{"ref":"v1","ref_type":"tag","sha":"abc","repository":{"clone_url":"x","ssh_url":"x"}}`), false)
	f.Add("push", []byte(`{"ref":"refs/heads/main","after":"","deleted":true,"repository":{}}`), false)
	f.Add("push", []byte(`{"ref":null,"repository":[]}`), false)
	f.Add("push", []byte(`[`), true)

	f.Fuzz(func(t *testing.T, event string, payload []byte, form bool) {
		h := http.Header{}
		body := payload
		if form {
			h.Set("Content-Type", "application/x-www-form-urlencoded")
			body = []byte(url.Values{"payload": {string(payload)}}.Encode())
		}
		data := payloadJSON(h, body)
		if form && string(data) != string(payload) {
			t.Fatalf("payloadJSON of a form = %q, want the payload field %q", data, payload)
		}
		for _, name := range []string{"github", "gitea", "gitlab"} {
			p, _ := providerNamed(name)
			ev, err := p.parse(event, data)
			if err != nil {
				if ev.Ref != "" || len(ev.RepoURLs) != 0 {
					t.Errorf("%s: parse(%q) failed (%v) but returned %+v", name, event, err, ev)
				}
				continue
			}
			checkEvent(t, name, event, ev)
		}
	})
}

// checkEvent checks what every accepted Event must satisfy.
func checkEvent(t *testing.T, provider, event string, ev Event) {
	t.Helper()
	if !strings.HasPrefix(ev.Ref, "refs/") {
		t.Errorf("%s %q: Ref %q is not a full ref", provider, event, ev.Ref)
	}
	wantTag := ""
	if tag, isTag := strings.CutPrefix(ev.Ref, "refs/tags/"); isTag {
		wantTag = tag
	}
	if ev.Tag != wantTag {
		t.Errorf("%s %q: Tag %q for Ref %q", provider, event, ev.Tag, ev.Ref)
	}
	if ev.Deleted && ev.After != "" {
		t.Errorf("%s %q: a deleted ref with After %q", provider, event, ev.After)
	}
	if ev.After != "" && strings.Trim(ev.After, "0") == "" {
		t.Errorf("%s %q: the all-zero After %q is not marked deleted", provider, event, ev.After)
	}
	if len(ev.RepoURLs) == 0 || slices.Contains(ev.RepoURLs, "") {
		t.Errorf("%s %q: RepoURLs %q", provider, event, ev.RepoURLs)
	}
	for i, u := range ev.RepoURLs {
		if slices.Index(ev.RepoURLs, u) != i {
			t.Errorf("%s %q: RepoURLs %q has %q twice", provider, event, ev.RepoURLs, u)
		}
	}
}
