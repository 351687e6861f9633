package server

import "net/http"

// handleSearch finds records by id or id prefix (app.Search): ids, types
// and states, no personal data, so any token may search and nothing is
// audited.
func handleSearch(o Options) http.Handler {
	return handleRead(o, func(r *http.Request) (any, error) {
		return o.App.Search(r.Context(), r.URL.Query().Get("q"))
	})
}
