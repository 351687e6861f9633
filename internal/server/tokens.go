package server

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Whoami names the token a request came with.
type Whoami struct {
	Name string    `json:"name"`
	Role kycd.Role `json:"role"`
}

func handleWhoami() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := callerOf(r)
		writeJSON(w, http.StatusOK, Whoami{Name: t.Name, Role: t.Role})
	})
}

func handleTokens(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		tokens, err := o.App.Tokens(r.Context())
		if err != nil {
			return nil, err
		}
		return map[string]any{"items": tokens}, nil
	})
}

// TokenRequest names a token to create and its role.
type TokenRequest struct {
	Name string    `json:"name"`
	Role kycd.Role `json:"role"`
}

// CreatedToken is a new token, shown this once: kycd keeps its hash only.
type CreatedToken = app.CreatedToken

func handleTokenCreate(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req TokenRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<10))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeError(w, r, o.Logger, kycd.Errorf(kycd.EINVALID, `the body must be JSON of at most 4 KiB, e.g. {"name":"support","role":"viewer"}`))
			return
		}
		t, err := o.App.CreateToken(r.Context(), actorOf(r), req.Name, string(req.Role))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusCreated, t)
	})
}

func handleTokenRevoke(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := o.App.RevokeToken(r.Context(), actorOf(r), r.PathValue("name")); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
