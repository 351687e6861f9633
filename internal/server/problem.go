package server

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/kycd/kycd"
)

// Problem is an RFC 9457 problem document.
type Problem = kycd.Problem

// FieldProblem names one bad field of a refused body.
type FieldProblem = kycd.FieldProblem

// statusOf maps application error codes to HTTP statuses: the one place
// that does.
func statusOf(code string) int {
	switch code {
	case kycd.EINVALID:
		return http.StatusBadRequest
	case kycd.EUNAUTHORIZED:
		return http.StatusUnauthorized
	case kycd.ENOTFOUND:
		return http.StatusNotFound
	case kycd.ECONFLICT:
		return http.StatusConflict
	case kycd.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeProblem answers with a problem document for status.
func writeProblem(w http.ResponseWriter, p Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if p.Status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", "5")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	// A problem document is strings, numbers and field lists: it always
	// encodes, so only the write can fail.
	b, _ := json.Marshal(p)
	writeBody(w, append(b, '\n'))
}

// writeError answers err as a problem. Internal errors are logged with their
// detail and answered with a generic message.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	code := kycd.ErrorCode(err)
	status := statusOf(code)
	if code == kycd.EINTERNAL || code == kycd.EUNAVAILABLE {
		logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeProblem(w, Problem{Status: status, Detail: kycd.ErrorMessage(err)})
}

// writeJSON answers v as JSON. v is encoded before anything is sent, so a
// value that cannot be encoded is answered 500, not with status and a
// body cut short.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, Problem{Status: http.StatusInternalServerError, Detail: "the answer could not be encoded"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	writeBody(w, append(b, '\n'))
}

// writeBody writes an answer's body once its status is sent. The write
// fails only when the client is gone or its connection was cut (the write
// timeout, a slow reader): the answer is lost and there is no one left to
// tell, so the error is dropped, as net/http itself drops it.
func writeBody(w http.ResponseWriter, b []byte) {
	_, _ = w.Write(b)
}
