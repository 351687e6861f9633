package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kycd/kycd"
)

// addRoutes lists every route kycd serves, and, for the API, the role a
// token needs for it: viewer reads, operator also acts on deliveries,
// sinks and the quarantine, admin also reads personal data, exports,
// erases, manages tokens and reads the audit log. The role of a route is
// decided here and nowhere else. A route that needs more than viewer names
// the action under which a refusal is audited.
func addRoutes(mux *http.ServeMux, o Options) {
	viewer := func(h http.Handler) http.Handler { return gate(o, kycd.RoleViewer, "", h) }
	operator := func(action string, h http.Handler) http.Handler { return gate(o, kycd.RoleOperator, action, h) }
	admin := func(action string, h http.Handler) http.Handler { return gate(o, kycd.RoleAdmin, action, h) }
	read := func(h http.Handler) http.Handler { return readYourWrites(o, h) }

	mux.Handle("/webhooks/ralio", traceWebhook(o, handleWebhook(o)))

	mux.Handle("GET /api/v1/whoami", viewer(handleWhoami()))
	mux.Handle("GET /api/v1/search", viewer(read(handleSearch(o))))
	mux.Handle("GET /api/v1/sessions", viewer(read(handleSessionList(o))))
	mux.Handle("GET /api/v1/sessions/stalled", viewer(read(handleStalledSessions(o))))
	mux.Handle("GET /api/v1/sessions/{id}", viewer(read(handleSession(o))))
	mux.Handle("GET /api/v1/sessions/{id}/notifications", viewer(read(handleSessionNotifications(o)))) // without invitation contact data
	mux.Handle("GET /api/v1/subjects/{id}", viewer(read(handleSubject(o))))
	mux.Handle("GET /api/v1/subjects/{id}/export", admin(kycd.AuditSubjectExport, read(handleSubjectExport(o))))
	mux.Handle("DELETE /api/v1/subjects/{id}", admin(kycd.AuditSubjectErase, caughtUp(o, handleSubjectErase(o))))
	mux.Handle("GET /api/v1/events", viewer(read(handleEventList(o))))
	mux.Handle("GET /api/v1/events/{id}", admin(kycd.AuditEventRead, read(handleEvent(o))))
	mux.Handle("GET /api/v1/events/{id}/summary", viewer(read(handleEventSummary(o)))) // without the body
	mux.Handle("GET /api/v1/stats", viewer(read(handleStats(o))))
	mux.Handle("GET /api/v1/reconciliations", viewer(handleReconciliations(o)))
	mux.Handle("GET /api/v1/quarantine", viewer(read(handleQuarantineList(o))))
	mux.Handle("GET /api/v1/quarantine/{id}", admin(kycd.AuditQuarantineRead, read(handleQuarantineItem(o))))
	mux.Handle("GET /api/v1/quarantine/{id}/summary", viewer(read(handleQuarantineSummary(o)))) // without the bodies
	mux.Handle("POST /api/v1/quarantine/{id}/replay", operator(kycd.AuditQuarantineReplay, handleQuarantineReplay(o)))
	mux.Handle("POST /api/v1/quarantine/{id}/discard", operator(kycd.AuditQuarantineDiscard, handleQuarantineDiscard(o)))
	mux.Handle("GET /api/v1/deliveries", viewer(read(handleDeliveries(o))))
	mux.Handle("GET /api/v1/deliveries/summary", viewer(read(handleDeliverySummary(o))))
	mux.Handle("POST /api/v1/deliveries/retry", operator(kycd.AuditDeliveryRetry, handleDeliveriesRetry(o)))
	mux.Handle("POST /api/v1/deliveries/drop", operator(kycd.AuditDeliveryDrop, handleDeliveriesDrop(o)))
	mux.Handle("GET /api/v1/deliveries/{id}", viewer(read(handleDelivery(o)))) // invitation contact data: admin only
	mux.Handle("POST /api/v1/deliveries/{id}/retry", operator(kycd.AuditDeliveryRetry, handleDeliveryRetry(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/move", operator(kycd.AuditDeliveryMove, handleDeliveryMove(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/drop", operator(kycd.AuditDeliveryDrop, handleDeliveryDrop(o)))
	mux.Handle("POST /api/v1/notifications/{id}/resend", operator(kycd.AuditNotificationResend, handleNotificationResend(o)))
	mux.Handle("GET /api/v1/sinks", viewer(read(handleSinks(o))))
	mux.Handle("POST /api/v1/sinks/{name}/resume", operator(kycd.AuditSinkResume, handleSinkResume(o)))
	mux.Handle("GET /api/v1/tokens", admin(kycd.AuditTokenList, handleTokens(o)))
	mux.Handle("POST /api/v1/tokens", admin(kycd.AuditTokenCreate, handleTokenCreate(o)))
	mux.Handle("DELETE /api/v1/tokens/{name}", admin(kycd.AuditTokenRevoke, handleTokenRevoke(o)))
	mux.Handle("GET /api/v1/audit", admin(kycd.AuditRead, handleAudit(o)))
	mux.Handle("GET /api/v1/openapi.json", handleOpenAPI())
	mux.Handle("/api/", viewer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, Problem{Status: http.StatusNotFound, Detail: "no such API endpoint"})
	})))

	mux.Handle("GET /{$}", handleDashboard())
	mux.Handle("GET /dashboard/", handleDashboard())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(o))
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true}))
}
