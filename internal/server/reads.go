package server

import (
	"net/http"

	"github.com/kycd/kycd"
)

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

// handleAuditedRead answers a read of personal data as handleRead does,
// once the read is in the audit trail (under action, with its outcome); a
// read that cannot be recorded is not answered.
func handleAuditedRead(o Options, action string, read func(r *http.Request) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := read(r)
		if aerr := o.recordResult(r, action, auditTarget(action, r), err, ""); aerr != nil && err == nil {
			err = kycd.Errorf(kycd.EUNAVAILABLE, "the read could not be recorded in the audit trail; try again")
		}
		if err != nil {
			writeError(w, r, o.Logger, err)
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
}
