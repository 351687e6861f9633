package server_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/requestid"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/ralio"
)

// Every answer, of every operation of the document, the webhook and the
// unknown paths, carries X-Request-Id: the request's own when sane, else
// a new UUID; the document says so.
func TestEveryAnswerHasARequestID(t *testing.T) {
	doc := loadSpec(t)
	if !strings.Contains(doc.Info.Description, "`X-Request-Id`") {
		t.Error("the OpenAPI document's description does not say that every answer carries X-Request-Id")
	}
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	paths := []string{"/webhooks/ralio", "/no-such-page", "/api/v1/no-such-thing"}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			paths = append(paths, method+" "+wildcardRE.ReplaceAllString(path, "x"))
		}
	}
	for _, p := range paths {
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			method, path = http.MethodPost, p
		}
		for in, want := range map[string]string{"lb-7f3a:1": "lb-7f3a:1", "": "", "two words": "", strings.Repeat("a", requestid.MaxLen+1): ""} {
			hdr := []string{"Authorization", bearer, "Content-Type", "application/json"}
			if in != "" {
				hdr = append(hdr, requestid.Header, in)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newRequest(method, path, []byte("{}"), hdr))
			got := rec.Header().Get(requestid.Header)
			if want != "" && got != want || want == "" && uuid.Validate(got) != nil {
				t.Errorf("%s %s with X-Request-Id %q answered %d with X-Request-Id %q, want %q (or a new UUID)", method, path, in, rec.Code, got, want)
			}
		}
	}
}

// The server's log lines of a request name its id, through a logger whose
// handler requestid.Handler wraps, as kycd serve's does.
func TestRequestLogLinesNameTheID(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(requestid.Handler(slog.NewJSONHandler(&buf, nil)))
	h, _ := newServerWith(t, func(s *sqlite.Store) kycd.Store { return s }, server.Options{Logger: logger})
	body := seed(t)
	for _, id := range []string{"first-7", "second-8"} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
		req.Header.Set(requestid.Header, id)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := buf.String()
	for _, want := range []string{`"msg":"event received","event_id":`, `"request_id":"first-7"`, `"msg":"event received again"`, `"request_id":"second-8"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %s:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.Contains(line, "event received") && !strings.Contains(line, `"request_id":"`) {
			t.Errorf("a line of a request without its id: %s", line)
		}
	}
}
