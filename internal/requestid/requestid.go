// Package requestid carries the id of an HTTP request in its context, so
// that every log line written while serving it names it: the server's
// middleware puts it there (With), and Handler, wrapped around kycd's log
// handler, adds it to each record logged with that context.
package requestid

import (
	"context"
	"log/slog"
)

// Header is the request and response header of the id.
const Header = "X-Request-Id"

// Key is the attribute of the id in a log record.
const Key = "request_id"

// MaxLen is the longest incoming id taken as it is.
const MaxLen = 128

type ctxKey struct{}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// From is the id ctx carries, "" for none.
func From(ctx context.Context) string {
	id, _ := ctx.Value(ctxKey{}).(string)
	return id
}

// Sane reports whether an incoming id may be logged and echoed as it is:
// 1 to MaxLen characters of letters, digits and - _ . : / + =, which
// covers UUIDs, the ids of proxies and load balancers (Heroku, AWS's
// Root=1-…) and base64, and keeps control characters, spaces and quotes
// out of the logs and the response headers.
func Sane(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '/', c == '+', c == '=':
		default:
			return false
		}
	}
	return true
}

// Handler adds the request id of a record's context to the record.
func Handler(h slog.Handler) slog.Handler { return handler{h} }

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(Key, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return handler{h.Handler.WithAttrs(attrs)}
}

func (h handler) WithGroup(name string) slog.Handler {
	return handler{h.Handler.WithGroup(name)}
}
