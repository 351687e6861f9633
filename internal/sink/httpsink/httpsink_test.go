package httpsink_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sink/httpsink"
)

const (
	secret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherSecret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

var message = kycd.Message{
	ID:      "0b0a1f1e-7d3c-4a4e-9a52-6f3c2b1d9e01",
	Type:    kycd.NotifySessionRejected,
	Payload: []byte(`{"id":"0b0a1f1e-7d3c-4a4e-9a52-6f3c2b1d9e01","type":"kyc.session.rejected","status":"REJECTED","failures":[{"checkType":"document-verification","code":"EXPIRED_DOCUMENT","message":"The provided document has expired"}]}`),
}

// request is what the receiver saw of one delivery.
type request struct {
	method string
	header http.Header
	body   []byte
}

// recorder is a receiver that keeps every request and answers 204.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, request{r.Method, r.Header.Clone(), body})
	rec.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

func newSink(t *testing.T, url string, now func() time.Time) *httpsink.Sink {
	t.Helper()
	s, err := httpsink.New(url, []string{secret}, nil, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func sendCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Two attempts at one message: both carry the same webhook-id, the
// timestamp of the injected clock, a signature the Standard Webhooks
// library accepts, and the payload unchanged.
func TestSendSignsStandardWebhook(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	// Verify checks the timestamp against the real clock (5 min tolerance),
	// so the injected clock stays near now; whole seconds, as on the wire.
	var mu sync.Mutex
	now := time.Unix(time.Now().Unix()-60, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newSink(t, srv.URL, clock)

	stamps := []time.Time{now, now.Add(30 * time.Second)}
	for _, ts := range stamps {
		mu.Lock()
		now = ts
		mu.Unlock()
		if err := s.Send(sendCtx(t), message); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	reqs := rec.requests()
	if len(reqs) != len(stamps) {
		t.Fatalf("receiver got %d requests, want %d", len(reqs), len(stamps))
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	other, err := standardwebhooks.NewWebhook(otherSecret)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		if r.method != http.MethodPost {
			t.Errorf("attempt %d: method %s, want POST", i, r.method)
		}
		if got := r.header.Get("Content-Type"); got != "application/json" {
			t.Errorf("attempt %d: Content-Type %q, want application/json", i, got)
		}
		if got := r.header.Get("webhook-id"); got != message.ID {
			t.Errorf("attempt %d: webhook-id %q, want the message id %q", i, got, message.ID)
		}
		if got, want := r.header.Get("webhook-timestamp"), strconv.FormatInt(stamps[i].Unix(), 10); got != want {
			t.Errorf("attempt %d: webhook-timestamp %q, want %q (Unix seconds of the injected clock)", i, got, want)
		}
		sig := r.header.Get("webhook-signature")
		mac, ok := strings.CutPrefix(sig, "v1,")
		if raw, err := base64.StdEncoding.DecodeString(mac); !ok || err != nil || len(raw) != 32 {
			t.Errorf("attempt %d: webhook-signature %q, want v1,<base64 of 32 bytes>", i, sig)
		}
		if string(r.body) != string(message.Payload) {
			t.Errorf("attempt %d: body %s, want %s", i, r.body, message.Payload)
		}
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("attempt %d: signature does not verify: %v", i, err)
		}
		if err := other.Verify(r.body, r.header); err == nil {
			t.Errorf("attempt %d: signature verifies with another secret", i)
		}
		if err := wh.Verify(append(r.body, ' '), r.header); err == nil {
			t.Errorf("attempt %d: signature verifies a changed body", i)
		}
	}
}

func TestSendStatus(t *testing.T) {
	t.Parallel()
	// A fixed clock on a whole second, so an HTTP-date Retry-After gives an
	// exact duration.
	now := time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter string
		nilErr     bool
		permanent  bool
		pause      bool
		wantAfter  time.Duration
	}{
		{name: "200", status: 200, nilErr: true},
		{name: "201", status: 201, nilErr: true},
		{name: "204", status: 204, nilErr: true},
		{name: "408", status: 408},
		{name: "429", status: 429},
		{name: "500", status: 500},
		{name: "502", status: 502},
		{name: "503", status: 503},
		{name: "400", status: 400, permanent: true},
		{name: "401", status: 401, permanent: true},
		{name: "403", status: 403, permanent: true},
		{name: "404", status: 404, permanent: true},
		{name: "410 pauses the sink", status: 410, pause: true},
		{name: "422", status: 422, permanent: true},
		{name: "429 Retry-After seconds", status: 429, retryAfter: "2", wantAfter: 2 * time.Second},
		{name: "503 Retry-After seconds", status: 503, retryAfter: "120", wantAfter: 2 * time.Minute},
		{name: "429 Retry-After date", status: 429, retryAfter: now.Add(90 * time.Second).Format(http.TimeFormat), wantAfter: 90 * time.Second},
		{name: "429 Retry-After past date", status: 429, retryAfter: now.Add(-time.Hour).Format(http.TimeFormat)},
		{name: "429 Retry-After garbage", status: 429, retryAfter: "soon"},
		{name: "429 Retry-After zero", status: 429, retryAfter: "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.WriteHeader(tc.status)
			}))
			t.Cleanup(srv.Close)
			s := newSink(t, srv.URL, func() time.Time { return now })

			err := s.Send(sendCtx(t), message)
			if tc.nilErr {
				if err != nil {
					t.Fatalf("Send = %v, want nil", err)
				}
				return
			}
			se, ok := errors.AsType[*kycd.SinkError](err)
			if !ok {
				t.Fatalf("Send = %v (%T), want a *kycd.SinkError", err, err)
			}
			if se.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", se.StatusCode, tc.status)
			}
			if se.Permanent != tc.permanent {
				t.Errorf("Permanent = %v, want %v (%v)", se.Permanent, tc.permanent, err)
			}
			if se.Pause != tc.pause {
				t.Errorf("Pause = %v, want %v (%v)", se.Pause, tc.pause, err)
			}
			if se.RetryAfter != tc.wantAfter {
				t.Errorf("RetryAfter = %v, want %v", se.RetryAfter, tc.wantAfter)
			}
		})
	}
}

// A redirect is not followed (it would turn the POST into a GET) and is
// retried: the merchant may fix the URL.
func TestSendRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	target := &recorder{}
	dst := httptest.NewServer(target)
	t.Cleanup(dst.Close)
	src := httptest.NewServer(http.RedirectHandler(dst.URL, http.StatusFound))
	t.Cleanup(src.Close)

	// A caller's client with its own redirect policy: New must not follow
	// redirects nor change the caller's client.
	client := &http.Client{}
	s, err := httpsink.New(src.URL, []string{secret}, client, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(sendCtx(t), message)
	se, ok := errors.AsType[*kycd.SinkError](err)
	if !ok {
		t.Fatalf("Send = %v (%T), want a *kycd.SinkError", err, err)
	}
	if se.Permanent || se.StatusCode != http.StatusFound {
		t.Errorf("Send = %+v, want retryable with StatusCode 302", se)
	}
	if n := len(target.requests()); n != 0 {
		t.Errorf("the redirect target got %d requests, want 0", n)
	}
	if client.CheckRedirect != nil {
		t.Error("New changed the caller's http.Client")
	}
}

func TestSendConnectionRefused(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	s := newSink(t, url, nil)

	err := s.Send(sendCtx(t), message)
	if err == nil {
		t.Fatal("Send to a closed server = nil error")
	}
	if se, ok := errors.AsType[*kycd.SinkError](err); ok && se.Permanent {
		t.Errorf("Send to a closed server = permanent %v, want retryable", err)
	}
}

func TestSendTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	s := newSink(t, srv.URL, nil)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := s.Send(ctx, message)
	if err == nil {
		t.Fatal("Send to a receiver slower than the deadline = nil error")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want it to wrap context.DeadlineExceeded", err)
	}
	if se, ok := errors.AsType[*kycd.SinkError](err); ok && se.Permanent {
		t.Errorf("Send timed out = permanent %v, want retryable", err)
	}
}

func TestNewBadSecret(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"",
		"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", // base64 without whsec_
		"whsec_not base64!",
	} {
		if _, err := httpsink.New("http://127.0.0.1:1/", []string{s}, nil, nil); err == nil {
			t.Errorf("New with secret %q = nil error", s)
		}
	}
}

// During a rotation the sink signs with the old and the new secret: one
// header, two v1 signatures, and a receiver holding either one verifies
// every delivery with the official Standard Webhooks library.
func TestSendSignsWithEverySecretOfARotation(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	s, err := httpsink.New(srv.URL, []string{secret, otherSecret}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.Send(sendCtx(t), message); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	third, err := standardwebhooks.NewWebhook("whsec_" + base64.StdEncoding.EncodeToString([]byte("a third secret of 32 bytes......")))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rec.requests() {
		if sigs := strings.Fields(r.header.Get("webhook-signature")); len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
			t.Errorf("delivery %d: webhook-signature %q, want two v1 signatures", i, r.header.Get("webhook-signature"))
		}
		for _, k := range []string{secret, otherSecret} {
			wh, err := standardwebhooks.NewWebhook(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := wh.Verify(r.body, r.header); err != nil {
				t.Errorf("delivery %d: a receiver holding %s… cannot verify it: %v", i, k[:10], err)
			}
		}
		if err := third.Verify(r.body, r.header); err == nil {
			t.Errorf("delivery %d verifies with a secret the sink does not hold", i)
		}
	}
}

// Neither a failed connection nor a refusal names the URL's password or
// query token: Go's client writes the URL into its errors, and the errors
// end up in logs, the API and the CLI.
func TestErrorsNeverNameCredentials(t *testing.T) {
	t.Parallel()
	const pw, token = "Pa55w0rdXYZ", "T0k3nQRS"
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }))
	t.Cleanup(refusing.Close)
	for _, base := range []string{closedURL, refusing.URL} {
		u := strings.Replace(base, "http://", "http://merchant:"+pw+"@", 1) + "/hook?token=" + token
		s, err := httpsink.New(u, []string{secret}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(sendCtx(t), message)
		if err == nil {
			t.Fatalf("Send to %s = nil error", base)
		}
		if msg := err.Error(); strings.Contains(msg, pw) || strings.Contains(msg, token) || !strings.Contains(msg, "/hook") {
			t.Errorf("Send error %q names a credential, or not the endpoint", msg)
		}
	}
}

func TestNewNeedsASecret(t *testing.T) {
	t.Parallel()
	if _, err := httpsink.New("http://127.0.0.1:1/", nil, nil, nil); err == nil {
		t.Fatal("New without a secret = nil error")
	}
}

// A failure carries the start of the receiver's answer, its first KiB, for
// the attempt's record: what an operator reads to see why it failed.
func TestSendKeepsTheAnswersStart(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name, body, want string
		status           int
	}{
		{"422 with a reason", `{"error":"subject.id is required"}`, `{"error":"subject.id is required"}`, 422},
		{"503 with a page", "<h1>maintenance</h1>", "<h1>maintenance</h1>", 503},
		{"a long answer", long, long[:kycd.ResponseBodyLimit], 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			t.Cleanup(srv.Close)
			err := newSink(t, srv.URL, time.Now).Send(sendCtx(t), message)
			se, ok := errors.AsType[*kycd.SinkError](err)
			if !ok || se.Body != tc.want {
				t.Fatalf("Send = %v; want a SinkError with the body %.40q… (%d bytes)", err, tc.want, len(tc.want))
			}
		})
	}
}
