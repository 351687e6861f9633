package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kycd/kycd"
)

// callerKey carries the token of an authenticated request.
type callerKey struct{}

// callerOf is the token a request was authenticated with (gate puts it
// there); the zero token for a request that has none.
func callerOf(r *http.Request) kycd.Token {
	t, _ := r.Context().Value(callerKey{}).(kycd.Token)
	return t
}

// touches remembers when each token's last use was written, so that a
// token costs the store one write a minute, not one a request.
type touches struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// due reports whether name's use at now should be written, and if so
// notes that it is.
func (t *touches) due(name string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if last, ok := t.last[name]; ok && now.Sub(last) < kycd.TokenTouchInterval {
		return false
	}
	t.last[name] = now
	return true
}

// gate lets a request through with a token whose role allows role. Without
// a token, or with one kycd does not know, the answer is 401; with a path
// that names nothing kycd could hold (checkPath), 400, and nothing is
// audited; with a token whose role is too small, 403, and the refusal is
// audited under action.
// The token the request came with goes into its context (callerOf).
func gate(o Options, role kycd.Role, action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, err := authenticate(o, r)
		if err != nil {
			if kycd.ErrorCode(err) == kycd.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="kycd"`)
			}
			writeError(w, r, o.Logger, err)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, tok))
		if err := checkPath(action, r); err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		if !tok.Role.Allows(role) {
			if action != "" {
				// A refusal reads and changes nothing, so it is answered
				// even when its entry could not be written (record logs
				// that): answering 503 instead would tell the caller less.
				_ = o.record(r, action, auditTarget(action, r), kycd.AuditRefused, "needs the "+string(role)+" role; the token is "+string(tok.Role))
			}
			writeProblem(w, Problem{Status: http.StatusForbidden,
				Detail: fmt.Sprintf("this needs a token of role %s or above; token %s has role %s", role, tok.Name, tok.Role)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate finds the token of a request's bearer credentials: the
// configured admin token (Options.AdminTokenHash), or one of the store's
// tokens, compared by hash. EUNAUTHORIZED when there is none or it is
// unknown; EUNAVAILABLE when the store cannot say.
func authenticate(o Options, r *http.Request) (kycd.Token, error) {
	unauthorized := kycd.Errorf(kycd.EUNAUTHORIZED, "a token is required: send Authorization: Bearer <token>")
	secret, ok := bearer(r.Header.Get("Authorization"))
	if !ok || secret == "" {
		return kycd.Token{}, unauthorized
	}
	if o.AdminTokenHash != "" && kycd.TokenMatches(o.AdminTokenHash, secret) {
		Trust(r.Context())
		return kycd.Token{Name: kycd.AdminTokenName, Role: kycd.RoleAdmin}, nil
	}
	tok, err := o.Store.TokenByHash(r.Context(), kycd.TokenHash(secret))
	switch kycd.ErrorCode(err) {
	case "":
	case kycd.ENOTFOUND:
		return kycd.Token{}, unauthorized
	default:
		return kycd.Token{}, err
	}
	if now := o.Now(); o.touches.due(tok.Name, now) {
		if err := o.Store.TouchToken(r.Context(), tok.Name, now); err != nil {
			o.Logger.WarnContext(r.Context(), "could not note a token's use", "token", tok.Name, "err", err)
		}
	}
	// A known token's connection keeps the server's idle timeout.
	Trust(r.Context())
	return *tok, nil
}

// record appends an entry to the audit trail for the request's caller and
// remote address. A failure is logged at ERROR and returned: a read of
// personal data must not be answered unless it is recorded.
func (o Options) record(r *http.Request, action, target, outcome, detail string) error {
	e := &kycd.AuditEntry{At: o.Now().UTC(), Actor: callerOf(r).Name, Action: action, Target: target,
		Remote: remoteHost(r), Outcome: outcome, Detail: detail}
	// Recorded even when the client has gone: what was done was done.
	if err := o.Store.AddAudit(context.WithoutCancel(r.Context()), e); err != nil {
		o.Logger.ErrorContext(r.Context(), "could not record an audit entry", "action", action, "target", target, "outcome", outcome, "err", err)
		return err
	}
	return nil
}

// remoteHost is the address a request came from, without its port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// checkPath is EINVALID when the request's path names what kycd cannot
// hold, by the rules of the domain: an {id} that is not a UUID
// (kycd.ParseID), a sink's or a token's {name} that no sink or token may
// have, a subject's ?type= that is none of kycd's. Such a request acts on
// nothing, so it is refused before its role is looked at and leaves no
// line in the audit trail (a request path is where a viewer could put
// control characters into it).
func checkPath(action string, r *http.Request) error {
	if id := r.PathValue("id"); id != "" {
		if _, err := kycd.ParseID(id); err != nil {
			return err
		}
	}
	switch name := r.PathValue("name"); {
	case name == "":
	case actionKind(action) == "sink":
		return kycd.CheckSinkName(name)
	case actionKind(action) == "token":
		return kycd.CheckTokenName(name)
	}
	if actionKind(action) == "subject" {
		return kycd.CheckSubjectType(r.URL.Query().Get("type"))
	}
	return nil
}

// actionKind is the part of an action before its dot: delivery of
// delivery.retry.
func actionKind(action string) string {
	kind, _, _ := strings.Cut(action, ".")
	return kind
}

// auditTarget names what an action of the request is about, from the
// action's kind (actionKind) and the request's path: e.g. delivery:<id>,
// sink:<name>, subject:<type>:<id>.
func auditTarget(action string, r *http.Request) string {
	kind := actionKind(action)
	switch {
	case kind == "subject":
		return kycd.SubjectTarget(kycd.SubjectRef{Type: r.URL.Query().Get("type"), ID: pathID(r)})
	case r.PathValue("id") != "":
		return kycd.AuditTarget(kind, pathID(r))
	case r.PathValue("name") != "":
		return kycd.AuditTarget(kind, r.PathValue("name"))
	}
	return kind
}
