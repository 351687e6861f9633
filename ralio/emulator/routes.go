package emulator

import (
	"net/http"

	"github.com/kycd/kycd/ralio"
)

// Handler serves Ralio's REST API (under /api/v1, with the API key), the
// control API (under /emulator/v1, open) and the hosted pages.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.Handler) { mux.Handle(pattern, e.requireAPIKey(h)) }

	// Ralio's REST API (CONTRACT.md, last section).
	const sessions = "/api/v1/account/users/{uid}/identity-verifications"
	api("POST "+sessions, e.handleCreateSession())
	api("GET "+sessions, e.handleListSessions())
	api("GET "+sessions+"/{sessionId}/checks", e.handleChecks())
	api("GET "+sessions+"/{sessionId}/state-history", e.handleStateHistory())
	api("GET /api/v1/account/business-user/{uid}/kyb-sessions", e.handleKYBSessions())
	api("/api/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		apiError(w, http.StatusNotFound, "no such endpoint in the emulated Ralio API")
	}))

	// The control API: what happens in Ralio, and what it sent. It has no
	// key, so a browser's cross-site request is refused: any page a
	// developer opens could otherwise POST a text/plain form to localhost
	// and verify a session.
	control := http.NewServeMux()
	mux.Handle("/emulator/", sameSiteOnly(control))
	control.Handle("POST /emulator/v1/sessions/{sessionId}/outcome", e.handleOutcome())
	control.Handle("POST /emulator/v1/sessions/{sessionId}/start", e.handleStart())
	control.Handle("POST /emulator/v1/users/{id}/kyc-level", e.handleKYCLevel(ralio.SubjectUser))
	control.Handle("POST /emulator/v1/related-parties/{id}/kyc-level", e.handleKYCLevel(ralio.SubjectRelatedParty))
	control.Handle("POST /emulator/v1/users/{id}/expiration-warning", e.handleExpirationWarning(ralio.SubjectUser))
	control.Handle("POST /emulator/v1/related-parties/{id}/expiration-warning", e.handleExpirationWarning(ralio.SubjectRelatedParty))
	control.Handle("POST /emulator/v1/business-users/{id}/kyb-level", e.handleKYBLevel())
	control.Handle("POST /emulator/v1/business-users/{id}/related-parties", e.handleInvite())
	control.Handle("POST /emulator/v1/business-users/{id}/kyb-sessions", e.handleNewKYBSession())
	control.Handle("GET /emulator/v1/deliveries", e.handleDeliveries())
	control.Handle("POST /emulator/v1/deliveries/{eventId}/redeliver", e.handleRedeliver())

	mux.Handle("GET /hosted/{sessionId}", e.handleHosted())
	return mux
}

// sameSiteOnly refuses, 403, a state-changing request that a browser says
// comes from another site or origin (Sec-Fetch-Site, else Origin against
// Host); requests without those headers — curl, kycd, tests — pass.
func sameSiteOnly(h http.Handler) http.Handler {
	p := http.NewCrossOriginProtection()
	p.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		controlError(w, http.StatusForbidden, "cross-site request refused: the control API takes requests from curl, scripts and its own origin, not from another site's page")
	}))
	return p.Handler(h)
}
