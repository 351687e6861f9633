package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/ralio"
)

// freshEvent is the seed event with a new id.
func freshEvent(t *testing.T) (string, []byte) {
	t.Helper()
	id := uuid.NewString()
	return id, bytes.Replace(seed(t), []byte("550e8400-e29b-41d4-a716-446655440000"), []byte(id), 1)
}

func postWith(h http.Handler, body []byte, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// projected waits, at most 5 s, for event id to be projected, and returns it.
func projected(t *testing.T, store *sqlite.Store, id string) (*kycd.EventRecord, error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ev, err := store.Event(t.Context(), id)
		if err == nil || time.Now().After(deadline) {
			return ev, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Once its signature verifies, a body is Ralio's and read as JSON whatever
// its Content-Type; 415 is for unsigned requests.
func TestSignedBodyOfAnyContentTypeIsStored(t *testing.T) {
	t.Parallel()
	h, store := newServer(t, plain)
	for _, ct := range []string{"text/plain", "text/json", "application/x-json", "application/octet-stream",
		"application/json, text/plain", "application/xml", "*/*"} {
		id, body := freshEvent(t)
		rec := postWith(h, body, "Content-Type", ct, ralio.SignatureHeader, ralio.Sign(body, secret))
		if rec.Code != http.StatusOK {
			t.Errorf("signed, Content-Type %q = %d %s, want 200", ct, rec.Code, rec.Body)
			continue
		}
		if _, err := projected(t, store, id); err != nil {
			t.Errorf("signed, Content-Type %q: event not stored: %v", ct, err)
		}
	}
	_, body := freshEvent(t)
	if rec := postWith(h, body, "Content-Type", "text/plain"); rec.Code != http.StatusUnsupportedMediaType {
		t.Errorf("unsigned text/plain = %d, want 415", rec.Code)
	}
	if rec := postWith(h, body, "Content-Type", "text/plain", ralio.SignatureHeader, ralio.Sign(body, "another secret")); rec.Code != http.StatusUnauthorized {
		t.Errorf("text/plain with a wrong signature = %d, want 401", rec.Code)
	}
}

// A gzip body is decoded, its signature checked over the decoded or the
// received bytes, and kept decoded, so that a replay can read it.
func TestGzipBodyIsDecodedAndKeptDecoded(t *testing.T) {
	t.Parallel()
	h, store := newServerWith(t, plain, server.Options{MaxBody: 64 << 10})
	for _, c := range []struct {
		name   string
		signed func(plain, zipped []byte) string
	}{
		{"signed over the decoded body", func(p, _ []byte) string { return ralio.Sign(p, secret) }},
		{"signed over the bytes sent", func(_, z []byte) string { return ralio.Sign(z, secret) }},
	} {
		id, body := freshEvent(t)
		z := gzipped(body)
		rec := postWith(h, z, "Content-Type", "application/json", "Content-Encoding", "gzip", ralio.SignatureHeader, c.signed(body, z))
		if rec.Code != http.StatusOK {
			t.Errorf("%s: %d %s, want 200", c.name, rec.Code, rec.Body)
			continue
		}
		ev, err := projected(t, store, id)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !bytes.Equal(ev.Body, body) {
			t.Errorf("%s: kept %q, want the decoded body", c.name, ev.Body)
		}
	}

	// The same event sent plain afterwards is a duplicate of the gzip one.
	_, body := freshEvent(t)
	postWith(h, gzipped(body), "Content-Encoding", "gzip", ralio.SignatureHeader, ralio.Sign(body, secret))
	if rec := post(t, h, body); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "duplicate") {
		t.Errorf("the plain retry of a gzip event = %d %s, want 200 duplicate", rec.Code, rec.Body)
	}

	// A bomb: 16 MiB of spaces in 16 KiB, over the body limit once decoded.
	bomb := gzipped(append(body, bytes.Repeat([]byte(" "), 16<<20)...))
	if rec := postWith(h, bomb, "Content-Encoding", "gzip", ralio.SignatureHeader, ralio.Sign(bomb, secret)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a gzip bomb = %d %s, want 413", rec.Code, rec.Body)
	}
	// Within a 1 MiB limit but over the ratio: 300 KiB from about 300 bytes.
	h1, _ := newServerWith(t, plain, server.Options{MaxBody: 1 << 20})
	padded := append(bytes.TrimSpace(body)[:len(bytes.TrimSpace(body))-1], `,"pad":"`+strings.Repeat("x", 300<<10)+`"}`...)
	dense := gzipped(padded)
	if rec := postWith(h1, dense, "Content-Encoding", "gzip", ralio.SignatureHeader, ralio.Sign(padded, secret)); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("%d bytes that decode to %d = %d %s, want 413 (over the ratio)", len(dense), len(padded), rec.Code, rec.Body)
	}
	if rec := postWith(h1, padded, ralio.SignatureHeader, ralio.Sign(padded, secret)); rec.Code != http.StatusOK {
		t.Errorf("the same body sent plain = %d %s, want 200", rec.Code, rec.Body)
	}

	// Not gzip at all, but signed: refused 400 and kept as sent.
	junk := []byte("not gzip")
	if rec := postWith(h, junk, "Content-Encoding", "gzip", ralio.SignatureHeader, ralio.Sign(junk, secret)); rec.Code != http.StatusBadRequest {
		t.Errorf("a signed body that is not gzip = %d %s, want 400", rec.Code, rec.Body)
	}
	// Unsigned gzip: 401, as any unsigned body.
	if rec := postWith(h, gzipped(body), "Content-Encoding", "gzip"); rec.Code != http.StatusUnauthorized {
		t.Errorf("unsigned gzip = %d, want 401", rec.Code)
	}
}

// One peer address holds at most its share of the body budget: others,
// Ralio among them, still find room.
func TestOnePeerHoldsAShareOfTheBodyBudget(t *testing.T) {
	t.Parallel()
	const maxBody, budget = 64 << 10, 512 << 10 // a quarter: 128 KiB a peer
	h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody, BodyBudget: budget})
	almost := bytes.Repeat([]byte(" "), maxBody-1)
	// httptest's requests all come from 192.0.2.1: two bodies fill its share.
	slowBody(t, h, maxBody, almost)
	slowBody(t, h, maxBody, almost)
	assertRetryable(t, post(t, h, seed(t)))

	_, body := freshEvent(t)
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
	req.RemoteAddr = "198.51.100.7:40000"
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("a delivery from another address while one holds its share = %d %s, want 200", rec.Code, rec.Body)
	}
}

// limitedServer serves h on a loopback listener capped at n connections.
func limitedServer(t *testing.T, n int, untrusted time.Duration, h http.Handler) (string, *server.ConnLimiter, *server.Metrics) {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := server.NewMetrics()
	lim := server.NewConnLimiter(l, n, untrusted, m)
	srv := &http.Server{Handler: h, ConnState: lim.ConnState, ConnContext: lim.ConnContext, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(lim) }()
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), lim, m
}

// keepAlive opens a connection and sends one request on it, leaving it
// idle; it returns the connection and the status.
func keepAlive(t *testing.T, addr, path, header string) (net.Conn, int) {
	t.Helper()
	c, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n", path, header)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, resp.StatusCode
}

// closedSoon reports whether the server closes c within d.
func closedSoon(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && (!errors.As(err, &ne) || !ne.Timeout())
}

// At the cap the connection idle the longest is closed for the new one,
// untrusted ones first; a trusted connection keeps the server's idle
// timeout while untrusted ones are closed after theirs.
func TestConnLimiterClosesTheOldestIdleFirst(t *testing.T) {
	t.Parallel()
	h := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Trust") == "yes" {
			server.Trust(r.Context())
		}
	})
	addr, lim, m := limitedServer(t, 3, 0, h)
	trusted, _ := keepAlive(t, addr, "/", "Trust: yes\r\n")
	first, _ := keepAlive(t, addr, "/", "")
	second, _ := keepAlive(t, addr, "/", "")
	if n := lim.Open(); n != 3 {
		t.Fatalf("%d connections open, want 3", n)
	}
	// A fourth: the oldest untrusted idle one (first) makes room.
	if _, code := keepAlive(t, addr, "/", ""); code != http.StatusOK {
		t.Fatalf("a connection at the cap = %d, want 200", code)
	}
	if !closedSoon(first, 2*time.Second) {
		t.Error("the oldest untrusted idle connection was not closed at the cap")
	}
	if closedSoon(trusted, 200*time.Millisecond) || closedSoon(second, 200*time.Millisecond) {
		t.Error("a connection other than the oldest untrusted idle one was closed")
	}
	if got := metricValue(t, m, "kycd_http_connections_closed_total", "evicted"); got != 1 {
		t.Errorf("kycd_http_connections_closed_total{reason=evicted} = %v, want 1", got)
	}

	// Untrusted idle timeout.
	addr, _, m = limitedServer(t, 100, 300*time.Millisecond, h)
	trusted, _ = keepAlive(t, addr, "/", "Trust: yes\r\n")
	untrusted, _ := keepAlive(t, addr, "/", "")
	if !closedSoon(untrusted, 3*time.Second) {
		t.Error("an untrusted idle connection outlived its timeout")
	}
	if closedSoon(trusted, time.Second) {
		t.Error("a trusted idle connection was closed at the untrusted timeout")
	}
	if got := metricValue(t, m, "kycd_http_connections_closed_total", "untrusted_idle"); got != 1 {
		t.Errorf("kycd_http_connections_closed_total{reason=untrusted_idle} = %v, want 1", got)
	}
	if got := metricValue(t, m, "kycd_http_connections_open", ""); got != 1 {
		t.Errorf("kycd_http_connections_open = %v, want 1", got)
	}
}

// At the cap with every connection busy, a new one is answered 503.
func TestConnLimiterRefusesWhenNoneIsIdle(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release })
	addr, _, m := limitedServer(t, 1, 0, h)
	busy, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	fmt.Fprintf(busy, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := new(net.Dialer).DialContext(t.Context(), "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err == nil {
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a connection beyond the cap with none idle: %v, want 503 with Retry-After", err)
		}
		time.Sleep(20 * time.Millisecond) // the busy request may not be read yet
	}
	if got := metricValue(t, m, "kycd_http_connections_closed_total", "refused"); got < 1 {
		t.Errorf("kycd_http_connections_closed_total{reason=refused} = %v, want ≥ 1", got)
	}
}

// metricValue is the value of metric name (of the series whose one label
// has value label, or of the series without labels when label is "").
func metricValue(t *testing.T, m *server.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if l := s.GetLabel(); (label == "" && len(l) == 0) || (len(l) == 1 && l[0].GetValue() == label) {
				if s.GetCounter() != nil {
					return s.GetCounter().GetValue()
				}
				return s.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s{%s}", name, label)
	return 0
}
