package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"time"
)

// maxAdminBody bounds a request body of the admin API.
const maxAdminBody = 64 << 10

// Admin actions reported to Deps.OnAdminAction.
const (
	ActionTokenCreate = "token.create"
	ActionTokenRevoke = "token.revoke"
)

// tokenJSON is a token as the admin API shows it.
type tokenJSON struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Scopes  []Scope   `json:"scopes"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Expired bool      `json:"expired,omitempty"`
	// Token is the token text, only in the answer to its creation.
	Token string `json:"token,omitempty"`
}

// createRequest is the body of POST /admin/tokens.
type createRequest struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Expires is "never" (or empty), days ("90d"), a duration, a date or
	// an RFC 3339 time; see ParseExpiry.
	Expires string `json:"expires"`
}

// AdminHandler serves the token administration API under /admin/tokens.
// Every request needs the admin scope (the identity comes from
// Middleware, which must run first); answers and errors are JSON
// ({"error": "..."}):
//
//	GET    /admin/tokens       {"tokens": [...]}, oldest first
//	POST   /admin/tokens       {"name", "scopes", "expires"} → 201 with the token, whose "token" field is shown only here
//	DELETE /admin/tokens/{id}  200 with the revoked token; 404 if unknown (the id or the name)
//
// POST must be Content-Type application/json, which a browser cannot send
// to another site without asking first, so a page cannot forge it with an
// administrator's cached Basic credentials.
func (a *Authenticator) AdminHandler(tokens *Tokens) http.Handler {
	mux := http.NewServeMux()
	// List the tokens (never their secrets).
	mux.HandleFunc("GET /admin/tokens", func(w http.ResponseWriter, r *http.Request) {
		list, err := tokens.List()
		if err != nil {
			a.adminError(w, http.StatusInternalServerError, err)
			return
		}
		now := a.now()
		out := struct {
			Tokens []tokenJSON `json:"tokens"`
		}{Tokens: []tokenJSON{}}
		for _, t := range list {
			out.Tokens = append(out.Tokens, toJSON(t, now))
		}
		writeJSON(w, http.StatusOK, out)
	})
	// Create a token; the answer holds its text, once.
	mux.HandleFunc("POST /admin/tokens", func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			a.adminError(w, http.StatusUnsupportedMediaType, errors.New("send the request as Content-Type: application/json"))
			return
		}
		var req createRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			a.adminError(w, http.StatusBadRequest, fmt.Errorf("reading the request: %v", err))
			return
		}
		scopes, err := ParseScopes(req.Scopes)
		if err != nil {
			a.adminError(w, http.StatusBadRequest, err)
			return
		}
		now := a.now()
		expires, err := ParseExpiry(req.Expires, now)
		if err != nil {
			a.adminError(w, http.StatusBadRequest, err)
			return
		}
		text, tok, err := tokens.Create(req.Name, scopes, expires)
		if err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, ErrInvalidArgument) {
				status = http.StatusBadRequest
			}
			a.adminError(w, status, err)
			return
		}
		a.adminAction(r, ActionTokenCreate, describeToken(tok))
		out := toJSON(tok, now)
		out.Token = text
		writeJSON(w, http.StatusCreated, out)
	})
	// Revoke a token by id (or name).
	mux.HandleFunc("DELETE /admin/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		tok, err := tokens.Revoke(r.PathValue("id"))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			a.adminError(w, http.StatusNotFound, err)
			return
		case err != nil:
			a.adminError(w, http.StatusInternalServerError, err)
			return
		}
		a.adminAction(r, ActionTokenRevoke, describeToken(tok))
		writeJSON(w, http.StatusOK, toJSON(tok, a.now()))
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := a.Authorize(FromContext(r.Context()), Admin, "")
		switch {
		case errors.Is(err, ErrUnauthenticated):
			w.Header().Set("WWW-Authenticate", Challenge)
			a.adminError(w, http.StatusUnauthorized, err)
			return
		case err != nil:
			a.adminError(w, http.StatusForbidden, err)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Authenticator) adminAction(r *http.Request, action, detail string) {
	if a.onAdmin != nil {
		a.onAdmin(r.Context(), action, detail)
	}
}

func (a *Authenticator) adminError(w http.ResponseWriter, status int, err error) {
	if status >= 500 {
		a.log.Error("admin request failed", "err", err)
	}
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// describeToken is the detail of an admin action on tok.
func describeToken(tok Token) string {
	exp := "never"
	if !tok.Expires.IsZero() {
		exp = tok.Expires.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("id=%s name=%s scopes=%s expires=%s", tok.ID, tok.Name, FormatScopes(tok.Scopes), exp)
}

func toJSON(t Token, now time.Time) tokenJSON {
	return tokenJSON{ID: t.ID, Name: t.Name, Scopes: t.Scopes, Created: t.Created, Expires: t.Expires, Expired: t.Expired(now)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only our own types get here, and they always encode.
		panic(err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}
