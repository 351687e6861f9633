package ingest

import (
	"errors"
	"net/http"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// Problem is the RFC 9457 problem that answers a refusal of Receive: 400
// naming each bad field for EINVALID, 409 for ECONFLICT. The quarantine
// keeps the same document.
func Problem(err error) kycd.Problem {
	p := kycd.Problem{Type: "about:blank", Detail: kycd.ErrorMessage(err)}
	switch kycd.ErrorCode(err) {
	case kycd.EINVALID:
		p.Status, p.Title = http.StatusBadRequest, "Invalid Ralio event"
		var ve *ralio.ValidationError
		if errors.As(err, &ve) {
			for _, f := range ve.Fields {
				p.Errors = append(p.Errors, kycd.FieldProblem{Field: f.Field, Detail: f.Reason})
			}
		}
	case kycd.ECONFLICT:
		p.Status, p.Title = http.StatusConflict, "Event id reused"
	default:
		p.Status, p.Title = http.StatusServiceUnavailable, "Service Unavailable"
	}
	return p
}
