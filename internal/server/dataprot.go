package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
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

// handleSubjectExport answers everything kept about a subject, once the
// read is in the audit trail (app.ExportSubject).
func handleSubjectExport(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := app.Actor{Name: callerOf(r).Name, Remote: remoteHost(r)}
		x, err := o.App.ExportSubject(r.Context(), a, pathID(r), r.URL.Query().Get("type"))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="kycd-%s-%s.json"`, x.Subject.Type, x.Subject.ID))
		writeJSON(w, http.StatusOK, x)
	})
}

// handleSubjectErase erases a subject's personal data and answers the
// receipt (app.EraseSubject, which records it in the audit trail).
func handleSubjectErase(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := app.Actor{Name: callerOf(r).Name, Remote: remoteHost(r)}
		receipt, err := o.App.EraseSubject(r.Context(), a, pathID(r), r.URL.Query().Get("type"))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		// The subject's id is in the audit trail, not in the logs.
		o.Logger.InfoContext(r.Context(), "subject erased", "subject_type", receipt.Subject.Type,
			"actor", a.Name, "notification_id", receipt.NotificationID)
		writeJSON(w, http.StatusOK, receipt)
	})
}

// caughtUp lets a request through once every event acknowledged before it
// is projected, and answers 503 otherwise: an erasure must not miss an
// event it has not seen yet.
func caughtUp(o Options, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caught, err := o.Ingester.CaughtUp(r.Context(), o.ReadWait)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		if !caught {
			writeProblem(w, Problem{Status: http.StatusServiceUnavailable, Detail: "events acknowledged before this request are not projected yet; try again"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func handleTokens(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		tokens, err := o.Store.Tokens(r.Context())
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
type CreatedToken struct {
	kycd.Token
	Secret string `json:"token"`
}

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
		secret := NewToken()
		t := kycd.Token{Name: req.Name, Role: req.Role, Hash: kycd.TokenHash(secret), CreatedAt: o.Now().UTC()}
		err = kycd.CheckTokenName(t.Name)
		if err == nil {
			t.Role, err = kycd.ParseRole(string(req.Role))
		}
		if err == nil {
			err = o.Store.CreateToken(r.Context(), &t)
		}
		o.recordResult(r, kycd.AuditTokenCreate, kycd.AuditTarget("token", req.Name), err, "role "+string(req.Role))
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusCreated, CreatedToken{Token: t, Secret: secret})
	})
}

func handleTokenRevoke(o Options) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := o.Store.RevokeToken(r.Context(), name)
		o.recordResult(r, kycd.AuditTokenRevoke, kycd.AuditTarget("token", name), err, "")
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func handleAudit(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		return o.Store.Audit(r.Context(), kycd.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"),
			Limit: limit, Cursor: q.Get("cursor")})
	})
}

// NewToken returns a new API token: 256 random bits, URL-safe.
func NewToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// withoutInvitation is a notification payload without its personal data
// (kycd.RedactPayload: the invitation, the failures' messages, an
// expiration warning's action text), for a token that may not read it,
// and whether it held any.
func withoutInvitation(payload json.RawMessage) (json.RawMessage, bool) {
	return kycd.RedactPayload(payload)
}
