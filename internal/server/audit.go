package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

func handleAudit(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		limit, err := queryLimit(r)
		if err != nil {
			return nil, err
		}
		q := r.URL.Query()
		return o.App.Audit(r.Context(), kycd.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target"),
			Limit: limit, Cursor: q.Get("cursor")})
	})
}
