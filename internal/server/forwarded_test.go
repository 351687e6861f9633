package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/ralio"
)

// httptest's requests come from 192.0.2.1: here, a reverse proxy of kycd's.
var proxies = []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("10.0.0.0/8")}

// The audit trail's "From" is the client a trusted proxy names: the
// right-most address of X-Forwarded-For (or Forwarded) that is not itself
// a trusted proxy. What the client itself put in the header, and any
// header from a peer that is no trusted proxy, changes nothing.
func TestAuditRecordsTheClientTrustedProxiesName(t *testing.T) {
	t.Parallel()
	h, store := newServerWith(t, plain, server.Options{TrustedProxies: proxies})
	if rec := post(t, h, seed(t)); rec.Code != http.StatusOK {
		t.Fatalf("the seed event = %d %s", rec.Code, rec.Body)
	}
	// Each read of an event's raw body is in the audit trail.
	const read = "/api/v1/events/550e8400-e29b-41d4-a716-446655440000"
	for _, tc := range []struct {
		name   string
		remote string   // the peer; httptest's 192.0.2.1:1234 when ""
		header []string // name, value pairs
		want   string
	}{
		{"the client a proxy names", "", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"what the client claimed is left of it", "", []string{"X-Forwarded-For", "198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"a chain of trusted proxies", "", []string{"X-Forwarded-For", "198.51.100.1,203.0.113.9, 10.1.2.3"}, "203.0.113.9"},
		{"the list over two header lines", "", []string{"X-Forwarded-For", "203.0.113.9", "X-Forwarded-For", "10.1.2.3"}, "203.0.113.9"},
		{"an address with a port", "", []string{"X-Forwarded-For", "203.0.113.9:5555"}, "203.0.113.9"},
		{"IPv6", "", []string{"X-Forwarded-For", "2001:db8::1"}, "2001:db8::1"},
		{"only trusted proxies: the left-most", "", []string{"X-Forwarded-For", "10.9.9.9, 10.1.2.3"}, "10.9.9.9"},
		{"garbage: the proxy", "", []string{"X-Forwarded-For", "not-an-address"}, "192.0.2.1"},
		{"Forwarded", "", []string{"Forwarded", "for=203.0.113.9;proto=https;by=10.0.0.1"}, "203.0.113.9"},
		{"Forwarded, quoted IPv6 with a port", "", []string{"Forwarded", `for="[2001:db8::1]:4711", for=10.0.0.5`}, "2001:db8::1"},
		{"Forwarded, a quoted comma", "", []string{"Forwarded", `for=198.51.100.1, for=203.0.113.9;host="a,b;c"`}, "203.0.113.9"},
		{"Forwarded, case and spaces", "", []string{"Forwarded", `For = 203.0.113.9`}, "203.0.113.9"},
		{"Forwarded unknown: the proxy", "", []string{"Forwarded", "for=198.51.100.1, for=unknown"}, "192.0.2.1"},
		{"Forwarded obfuscated: the proxy", "", []string{"Forwarded", "for=_hidden"}, "192.0.2.1"},
		{"Forwarded without for: the proxy", "", []string{"Forwarded", "proto=https"}, "192.0.2.1"},
		{"X-Forwarded-For before Forwarded", "", []string{"Forwarded", "for=198.51.100.1", "X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"an IPv4-mapped proxy address", "[::ffff:192.0.2.1]:1234", []string{"X-Forwarded-For", "203.0.113.9"}, "203.0.113.9"},
		{"no header", "", nil, "192.0.2.1"},
		{"an untrusted peer's X-Forwarded-For", "198.51.100.7:4000", []string{"X-Forwarded-For", "203.0.113.9"}, "198.51.100.7"},
		{"an untrusted peer's Forwarded", "198.51.100.7:4000", []string{"Forwarded", "for=203.0.113.9"}, "198.51.100.7"},
		{"an untrusted peer naming a trusted proxy", "198.51.100.7:4000", []string{"X-Forwarded-For", "10.1.2.3"}, "198.51.100.7"},
	} {
		req := httptest.NewRequestWithContext(context.Background(), http.MethodGet, read, nil)
		req.Header.Set("Authorization", "Bearer token")
		if tc.remote != "" {
			req.RemoteAddr = tc.remote
		}
		for i := 0; i+1 < len(tc.header); i += 2 {
			req.Header.Add(tc.header[i], tc.header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: GET %s = %d %s", tc.name, read, rec.Code, rec.Body)
		}
		entries, err := store.Audit(t.Context(), kycd.AuditQuery{Action: kycd.AuditEventRead, Limit: 1})
		if err != nil || len(entries) != 1 {
			t.Fatalf("%s: the audit trail: %v, %d entries", tc.name, err, len(entries))
		}
		if got := entries[0].Remote; got != tc.want {
			t.Errorf("%s (%q from %s): audit From = %q, want %q", tc.name, tc.header, tc.remote, got, tc.want)
		}
	}
}

// Behind a trusted proxy each client holds its own share of the body
// budget, not one share for all; an untrusted peer cannot spend another
// client's share by naming it.
func TestProxiedClientsHoldTheirOwnShareOfTheBodyBudget(t *testing.T) {
	t.Parallel()
	const maxBody, budget = 64 << 10, 512 << 10 // a quarter: 128 KiB a peer
	almost := bytes.Repeat([]byte(" "), maxBody-1)
	signed := func(h http.Handler, remote string, header ...string) int {
		_, body := freshEvent(t)
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
		req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, secret))
		if remote != "" {
			req.RemoteAddr = remote
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}

	t.Run("trusted", func(t *testing.T) {
		t.Parallel()
		h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody, BodyBudget: budget, TrustedProxies: proxies})
		// A client behind the proxy fills its share with two stalled bodies.
		slowBody(t, h, maxBody, almost, "X-Forwarded-For", "198.51.100.66")
		slowBody(t, h, maxBody, almost, "X-Forwarded-For", "198.51.100.66")
		if code := signed(h, "", "X-Forwarded-For", "198.51.100.66"); code != http.StatusServiceUnavailable {
			t.Errorf("that client's next delivery = %d, want 503 (its share is in use)", code)
		}
		if code := signed(h, "", "X-Forwarded-For", "203.0.113.9"); code != http.StatusOK {
			t.Errorf("another client's delivery through the same proxy = %d, want 200", code)
		}
		if code := signed(h, "198.51.100.7:4000", "X-Forwarded-For", "198.51.100.66"); code != http.StatusOK {
			t.Errorf("an untrusted peer naming the full client = %d, want 200 (its own share counts)", code)
		}
	})

	t.Run("not trusted", func(t *testing.T) {
		t.Parallel()
		h, _ := newServerWith(t, plain, server.Options{MaxBody: maxBody, BodyBudget: budget})
		slowBody(t, h, maxBody, almost, "X-Forwarded-For", "198.51.100.66")
		slowBody(t, h, maxBody, almost, "X-Forwarded-For", "198.51.100.66")
		if code := signed(h, "", "X-Forwarded-For", "203.0.113.9"); code != http.StatusServiceUnavailable {
			t.Errorf("without --trusted-proxies, a delivery from the proxy's address naming another client = %d, want 503 (one share for the proxy)", code)
		}
	})
}

// A log line's remote is the client a trusted proxy names too.
func TestLogsNameTheClientTrustedProxiesName(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	h, _ := newServerWith(t, plain, server.Options{TrustedProxies: proxies, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	body := seed(t)
	req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/webhooks/ralio", bytes.NewReader(body))
	req.Header.Set(ralio.SignatureHeader, ralio.Sign(body, "not-the-secret"))
	req.Header.Set("X-Forwarded-For", "198.51.100.1, 203.0.113.9")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Fatalf("a wrong signature = %d, want 401", rec.Code)
	}
	if out := logs.String(); !strings.Contains(out, "webhook signature refused") || !strings.Contains(out, "remote=203.0.113.9") {
		t.Errorf("the refusal's log line does not name the client 203.0.113.9:\n%s", out)
	}
}
