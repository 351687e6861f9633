package server

import "net/http"

// handleRead answers GET requests: read returns the JSON answer, or an
// error that becomes a problem (EINVALID 400, ENOTFOUND 404, …).
func handleRead(o Options, read func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := read(r)
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}
