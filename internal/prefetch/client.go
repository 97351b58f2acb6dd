package prefetch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/module"
)

// A Client speaks the GOPROXY protocol to one modgate.
type Client struct {
	// Base is the proxy's URL, without a trailing slash.
	Base string
	// HTTP sends the requests; nil means http.DefaultClient.
	HTTP *http.Client
	// Token, when set, is sent as a Bearer token.
	Token string
	// User and Password, when set (from .netrc), are sent as Basic auth.
	User, Password string
}

// ErrRefused matches the error of a file the proxy refused (403): a policy
// rule, or a token without the scope. The error text is the proxy's answer,
// which names the rule.
var ErrRefused = errors.New("refused by the proxy")

// statusError is a non-200 answer.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func (e *statusError) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.status == http.StatusForbidden
	case os.ErrNotExist:
		return e.status == http.StatusNotFound || e.status == http.StatusGone
	}
	return false
}

// response is what one request learned.
type response struct {
	cached bool  // X-Modgate-Cache: hit
	size   int64 // bytes of the file (Content-Length for HEAD)
	body   []byte
}

// fileURL returns the URL of a module file (ext is ".info", ".mod", ".zip")
// or of "list" when ext is "list".
func (c *Client) fileURL(m module.Version, ext string) (string, error) {
	p, err := module.EscapePath(m.Path)
	if err != nil {
		return "", err
	}
	if ext == "list" {
		return c.Base + "/" + p + "/@v/list", nil
	}
	v, err := module.EscapeVersion(m.Version)
	if err != nil {
		return "", err
	}
	return c.Base + "/" + p + "/@v/" + v + ext, nil
}

// get fetches a file; with keep false it sends HEAD, which makes modgate
// fetch, verify and store the file without sending it back.
func (c *Client) get(ctx context.Context, m module.Version, ext string, keep bool) (*response, error) {
	u, err := c.fileURL(m, ext)
	if err != nil {
		return nil, err
	}
	method := http.MethodGet
	if !keep {
		method = http.MethodHead
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	switch {
	case c.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.Token)
	case c.User != "" || c.Password != "":
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		line := strings.TrimSpace(strings.SplitN(string(msg), "\n", 2)[0])
		if line == "" || method == http.MethodHead {
			line = resp.Status
		}
		return nil, &statusError{status: resp.StatusCode, msg: line}
	}
	r := &response{cached: resp.Header.Get("X-Modgate-Cache") == "hit", size: resp.ContentLength}
	if keep {
		if r.body, err = io.ReadAll(io.LimitReader(resp.Body, 64<<20)); err != nil {
			return nil, err
		}
		r.size = int64(len(r.body))
	}
	return r, nil
}

// NetrcLogin returns the login and password for host in the .netrc file
// the go command would read ($NETRC, else ~/.netrc), if any.
func NetrcLogin(host string) (user, password string, ok bool) {
	name := os.Getenv("NETRC")
	if name == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", "", false
		}
		name = filepath.Join(home, ".netrc")
	}
	f, err := os.Open(name)
	if err != nil {
		return "", "", false
	}
	defer f.Close()
	var words []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		words = append(words, strings.Fields(sc.Text())...)
	}
	var cur string
	found := false
	for i := 0; i+1 < len(words); i++ {
		switch words[i] {
		case "machine":
			if found {
				return user, password, true
			}
			cur = words[i+1]
			// The go command's rule: the machine is the host, with the
			// port when the URL has one.
			found = cur == host || cur == hostname(host)
			i++
		case "login":
			if found {
				user = words[i+1]
			}
			i++
		case "password":
			if found {
				password = words[i+1]
			}
			i++
		}
	}
	return user, password, found
}

// HostOf returns the host (and port) of a server URL, for NetrcLogin.
func HostOf(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return ""
	}
	return u.Host
}

func hostname(host string) string {
	u := url.URL{Host: host}
	return u.Hostname()
}

func describe(m module.Version, ext string) string {
	return fmt.Sprintf("%s@%s%s", m.Path, m.Version, ext)
}
