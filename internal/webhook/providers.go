package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// errIgnored marks a validly signed event modgate has no use for.
var errIgnored = errors.New("event ignored")

// A provider is how one Git server sends webhooks.
type provider struct {
	eventHeaders    []string // the first one present names the event
	deliveryHeaders []string // the first one present identifies the delivery
	// verify checks the delivery's signature or token over the raw body.
	verify func(secret []byte, h http.Header, body []byte) error
	// parse turns a payload into an Event (without Provider and Delivery),
	// or returns errIgnored for events that change no code.
	parse func(event string, payload []byte) (Event, error)
}

// providerNamed returns the provider a path element names.
func providerNamed(name string) (provider, bool) {
	switch name {
	case "github":
		return github, true
	case "gitea":
		return gitea, true
	case "gitlab":
		return gitlab, true
	}
	return provider{}, false
}

// The supported providers. Values, not variables: nothing changes them.
var (
	github = provider{
		eventHeaders:    []string{"X-GitHub-Event"},
		deliveryHeaders: []string{"X-GitHub-Delivery"},
		verify: func(secret []byte, h http.Header, body []byte) error {
			return verifyHMAC(secret, h, body, "X-Hub-Signature-256")
		},
		parse: parseGitHub,
	}
	gitea = provider{
		// Forgejo, a fork of Gitea, sends its own headers as well as Gitea's.
		eventHeaders:    []string{"X-Gitea-Event", "X-Forgejo-Event"},
		deliveryHeaders: []string{"X-Gitea-Delivery", "X-Forgejo-Delivery"},
		verify: func(secret []byte, h http.Header, body []byte) error {
			return verifyHMAC(secret, h, body, "X-Gitea-Signature", "X-Forgejo-Signature", "X-Hub-Signature-256")
		},
		parse: parseGitea,
	}
	gitlab = provider{
		eventHeaders: []string{"X-Gitlab-Event"},
		// Idempotency-Key stays the same across GitLab's retries; the
		// event UUID identifies the event. X-Gitlab-Webhook-UUID names the
		// hook, not the delivery: every delivery of a hook shares it.
		deliveryHeaders: []string{"Idempotency-Key", "X-Gitlab-Event-UUID"},
		verify:          verifyGitLabToken,
		parse:           parseGitLab,
	}
)

// event returns the event name the headers give.
func (p provider) event(h http.Header) string { return firstHeader(h, p.eventHeaders) }

// delivery returns the delivery ID the headers give.
func (p provider) delivery(h http.Header) string { return firstHeader(h, p.deliveryHeaders) }

func firstHeader(h http.Header, names []string) string {
	for _, name := range names {
		if v := h.Get(name); v != "" {
			return v
		}
	}
	return ""
}

// verifyHMAC checks an HMAC-SHA256 of body under secret, hex-encoded, in the
// first of the given headers present. X-Hub-Signature-256 carries a "sha256="
// prefix; the others are bare hex.
func verifyHMAC(secret []byte, h http.Header, body []byte, headers ...string) error {
	for _, name := range headers {
		sig := h.Get(name)
		if sig == "" {
			continue
		}
		if name == "X-Hub-Signature-256" {
			var ok bool
			if sig, ok = strings.CutPrefix(sig, "sha256="); !ok {
				return fmt.Errorf("%s is not of the form sha256=<hex>", name)
			}
		}
		got, err := hex.DecodeString(sig)
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		if err != nil || !hmac.Equal(got, mac.Sum(nil)) {
			return fmt.Errorf("%s does not match the body and the configured secret", name)
		}
		return nil
	}
	return fmt.Errorf("missing signature header %s (set the webhook secret at the provider)", strings.Join(headers, " or "))
}

// verifyGitLabToken checks X-Gitlab-Token, which holds the secret itself.
func verifyGitLabToken(secret []byte, h http.Header, _ []byte) error {
	token := h.Get("X-Gitlab-Token")
	switch {
	case token == "":
		return errors.New("missing X-Gitlab-Token header (set the webhook secret token in GitLab)")
	case !equalSecret(token, secret):
		return errors.New("X-Gitlab-Token does not match the configured secret")
	}
	return nil
}

// payloadJSON returns the JSON of a delivery: the body, or its "payload"
// field when GitHub or Gitea were configured to send a form.
func payloadJSON(h http.Header, body []byte) []byte {
	if mt, _, _ := mime.ParseMediaType(h.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		if form, err := url.ParseQuery(string(body)); err == nil {
			return []byte(form.Get("payload"))
		}
	}
	return body
}

// githubRepo is the repository object of GitHub and Gitea payloads.
type githubRepo struct {
	CloneURL string `json:"clone_url"`
	SSHURL   string `json:"ssh_url"`
	HTMLURL  string `json:"html_url"`
}

func (r githubRepo) urls() []string { return []string{r.CloneURL, r.SSHURL, r.HTMLURL} }

// parseGitHub reads a "push" event (branches and tags, created, moved or
// deleted) or a "create" event (a new branch or tag, whose ref is a short name).
func parseGitHub(event string, payload []byte) (Event, error) {
	return parseGitHubLike(event, payload, false)
}

// parseGitea reads the same events as parseGitHub, from Gitea's payloads,
// which have the same shape except that a "create" event names its commit
// in "sha" and a push has no "deleted" flag.
func parseGitea(event string, payload []byte) (Event, error) {
	return parseGitHubLike(event, payload, true)
}

func parseGitHubLike(event string, payload []byte, gitea bool) (Event, error) {
	switch event {
	case "push", "create":
	default:
		return Event{}, errIgnored
	}
	var p struct {
		Ref        string     `json:"ref"`
		RefType    string     `json:"ref_type"`
		After      string     `json:"after"`
		SHA        string     `json:"sha"`
		Deleted    bool       `json:"deleted"`
		Repository githubRepo `json:"repository"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, err
	}
	after, deleted := p.After, p.Deleted
	if gitea {
		deleted = false
		if event == "create" {
			after = p.SHA
		}
	}
	return newEvent(p.Ref, p.RefType, after, deleted, p.Repository.urls())
}

// parseGitLab reads a "Push Hook" or "Tag Push Hook", and a "System Hook"
// (an instance-wide hook) carrying a push or tag_push. A deleted ref has an
// all-zero "after".
func parseGitLab(event string, payload []byte) (Event, error) {
	switch event {
	case "Push Hook", "Tag Push Hook", "System Hook":
	default:
		return Event{}, errIgnored
	}
	var p struct {
		ObjectKind string `json:"object_kind"`
		Ref        string `json:"ref"`
		After      string `json:"after"`
		Project    struct {
			GitHTTPURL string `json:"git_http_url"`
			GitSSHURL  string `json:"git_ssh_url"`
			WebURL     string `json:"web_url"`
		} `json:"project"`
		Repository struct {
			GitHTTPURL string `json:"git_http_url"`
			GitSSHURL  string `json:"git_ssh_url"`
			Homepage   string `json:"homepage"`
		} `json:"repository"`
	}
	if err := json.Unmarshal(payload, &p); err != nil {
		return Event{}, err
	}
	if event == "System Hook" && p.ObjectKind != "push" && p.ObjectKind != "tag_push" {
		return Event{}, errIgnored
	}
	return newEvent(p.Ref, "", p.After, false, []string{
		p.Project.GitHTTPURL, p.Repository.GitHTTPURL,
		p.Project.GitSSHURL, p.Repository.GitSSHURL,
		p.Project.WebURL, p.Repository.Homepage,
	})
}

// newEvent builds an Event from payload fields. refType ("tag" or "branch")
// qualifies a short ref; an all-zero after means the ref was deleted.
func newEvent(ref, refType, after string, deleted bool, urls []string) (Event, error) {
	if ref == "" {
		return Event{}, errors.New("no ref")
	}
	if !strings.HasPrefix(ref, "refs/") {
		switch refType {
		case "tag":
			ref = "refs/tags/" + ref
		case "branch":
			ref = "refs/heads/" + ref
		default:
			return Event{}, fmt.Errorf("ref %q is not a full ref and ref_type %q is neither tag nor branch", ref, refType)
		}
	}
	if after != "" && strings.Trim(after, "0") == "" {
		deleted = true
	}
	if deleted {
		after = ""
	}
	ev := Event{Ref: ref, Deleted: deleted, After: after}
	if tag, ok := strings.CutPrefix(ref, "refs/tags/"); ok {
		ev.Tag = tag
	}
	for _, u := range urls {
		if u != "" && !slices.Contains(ev.RepoURLs, u) {
			ev.RepoURLs = append(ev.RepoURLs, u)
		}
	}
	if len(ev.RepoURLs) == 0 {
		return Event{}, errors.New("no repository URL")
	}
	return ev, nil
}
