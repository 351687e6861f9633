package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes lists every route kycd serves.
func addRoutes(mux *http.ServeMux, o Options) {
	admin := func(h http.Handler) http.Handler { return requireAdmin(o.AdminTokenHash, h) }
	read := func(h http.Handler) http.Handler { return admin(readYourWrites(o, h)) }

	mux.Handle("/webhooks/ralio", handleWebhook(o))

	mux.Handle("GET /api/v1/sessions", read(handleSessionList(o)))
	mux.Handle("GET /api/v1/sessions/stalled", read(handleStalledSessions(o)))
	mux.Handle("GET /api/v1/sessions/{id}", read(handleSession(o)))
	mux.Handle("GET /api/v1/sessions/{id}/notifications", read(handleSessionNotifications(o)))
	mux.Handle("GET /api/v1/subjects/{id}", read(handleSubject(o)))
	mux.Handle("GET /api/v1/events", read(handleEventList(o)))
	mux.Handle("GET /api/v1/events/{id}", read(handleEvent(o)))
	mux.Handle("GET /api/v1/stats", read(handleStats(o)))
	mux.Handle("GET /api/v1/reconciliations", admin(handleReconciliations(o)))
	mux.Handle("GET /api/v1/quarantine", read(handleQuarantineList(o)))
	mux.Handle("GET /api/v1/quarantine/{id}", read(handleQuarantineItem(o)))
	mux.Handle("POST /api/v1/quarantine/{id}/replay", admin(handleQuarantineReplay(o)))
	mux.Handle("POST /api/v1/quarantine/{id}/discard", admin(handleQuarantineDiscard(o)))
	mux.Handle("GET /api/v1/deliveries", read(handleDeliveries(o)))
	mux.Handle("GET /api/v1/deliveries/{id}", read(handleDelivery(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/retry", admin(handleDeliveryRetry(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/move", admin(handleDeliveryMove(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/drop", admin(handleDeliveryDrop(o)))
	mux.Handle("POST /api/v1/notifications/{id}/resend", admin(handleNotificationResend(o)))
	mux.Handle("GET /api/v1/sinks", read(handleSinks(o)))
	mux.Handle("POST /api/v1/sinks/{name}/resume", admin(handleSinkResume(o)))
	mux.Handle("GET /api/v1/openapi.json", handleOpenAPI())
	mux.Handle("/api/", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Status: http.StatusNotFound, Detail: "no such API endpoint"})
	})))

	mux.Handle("GET /{$}", handleDashboard())
	mux.Handle("GET /dashboard/", handleDashboard())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(o))
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{EnableOpenMetrics: true}))
}
