package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// addRoutes lists every route kycd serves.
func addRoutes(mux *http.ServeMux, o Options) {
	admin := func(h http.Handler) http.Handler { return requireAdmin(o.AdminToken, h) }

	mux.Handle("/webhooks/ralio", handleWebhook(o))

	mux.Handle("GET /api/v1/sessions", admin(handleSessionList(o)))
	mux.Handle("GET /api/v1/sessions/{id}", admin(handleSession(o)))
	mux.Handle("GET /api/v1/subjects/{id}", admin(handleSubject(o)))
	mux.Handle("GET /api/v1/events", admin(handleEventList(o)))
	mux.Handle("GET /api/v1/events/{id}", admin(handleEvent(o)))
	mux.Handle("GET /api/v1/stats", admin(handleStats(o)))
	mux.Handle("GET /api/v1/quarantine", admin(handleQuarantineList(o)))
	mux.Handle("GET /api/v1/quarantine/{id}", admin(handleQuarantineItem(o)))
	mux.Handle("POST /api/v1/quarantine/{id}/replay", admin(handleQuarantineReplay(o)))
	mux.Handle("GET /api/v1/deliveries", admin(handleDeliveries(o)))
	mux.Handle("GET /api/v1/deliveries/{id}", admin(handleDelivery(o)))
	mux.Handle("POST /api/v1/deliveries/{id}/retry", admin(handleDeliveryRetry(o)))
	mux.Handle("GET /api/v1/openapi.json", handleOpenAPI())
	mux.Handle("/api/", admin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, Problem{Status: http.StatusNotFound, Detail: "no such API endpoint"})
	})))

	mux.Handle("GET /{$}", handleDashboard())
	mux.Handle("GET /dashboard/", handleDashboard())
	mux.Handle("GET /healthz", handleHealthz())
	mux.Handle("GET /readyz", handleReadyz(o))
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Metrics.Registry, promhttp.HandlerOpts{}))
}
