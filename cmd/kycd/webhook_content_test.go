package main

// Issue 15, item 1: a signed event is never lost to a 4xx for how it was
// labelled or coded.

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// The same signed kyc_session_failed with each Content-Type Ralio's
// clients were seen to send, and gzip-compressed, is answered 200 and
// stored, through the real server.
func TestSignedEventOfAnyContentTypeOrGzipIsStored(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	deliver := func(name string, body, sent []byte, header http.Header) {
		t.Helper()
		id := mustEventID(t, body)
		a := s.mustDo(t, newRequest(http.MethodPost, s.URL+"/webhooks/ralio", sent, header))
		if a.status != http.StatusOK {
			t.Errorf("%s: %s, want 200", name, a)
			return
		}
		ev := s.event(t, id)
		if ev.Outcome != kycd.OutcomeApplied {
			t.Errorf("%s: stored with outcome %q, want applied", name, ev.Outcome)
		}
		if !jsonEqual(ev.Body, body) {
			t.Errorf("%s: stored body %s, want the event as JSON", name, ev.Body)
		}
	}
	for _, ct := range []string{"text/plain", "text/json", "application/x-json", "application/octet-stream", "application/json, text/plain"} {
		_, body := newFailedEvent(600)
		deliver("Content-Type "+ct, body, body, http.Header{"Content-Type": {ct}, ralio.SignatureHeader: {ralio.Sign(body, testSecret)}})
	}
	_, body := newFailedEvent(600)
	deliver("gzip, signed over the JSON", body, gzipBytes(t, body), http.Header{"Content-Type": {"application/json"},
		"Content-Encoding": {"gzip"}, ralio.SignatureHeader: {ralio.Sign(body, testSecret)}})
	_, body = newFailedEvent(600)
	z := gzipBytes(t, body)
	deliver("gzip, signed over the bytes sent", body, z, http.Header{"Content-Type": {"application/json"},
		"Content-Encoding": {"gzip"}, ralio.SignatureHeader: {ralio.Sign(z, testSecret)}})

	// A refused gzip body is kept decoded, as a replay reads it: the
	// quarantine shows the JSON, not compressed bytes.
	conflicting := bytes.Replace(body, []byte(`"expired"`), []byte(`"expired last year"`), 1)
	a := s.mustDo(t, newRequest(http.MethodPost, s.URL+"/webhooks/ralio", gzipBytes(t, conflicting), http.Header{
		"Content-Encoding": {"gzip"}, ralio.SignatureHeader: {ralio.Sign(conflicting, testSecret)}}))
	wantProblem(t, a, http.StatusConflict)
	q := s.onlyQuarantined(t, kycd.QuarantineConflict)
	if q.Body == nil || *q.Body != string(conflicting) {
		t.Errorf("quarantined body = %v, want the decoded JSON", q.Body)
	}

	// Unsigned and not JSON is still 415, as DESIGN's table says.
	a = s.mustDo(t, newRequest(http.MethodPost, s.URL+"/webhooks/ralio", body, http.Header{"Content-Type": {"text/plain"}}))
	wantProblem(t, a, http.StatusUnsupportedMediaType)
}

// mustEventID is the id field of a generation A body.
func mustEventID(t *testing.T, body []byte) string {
	t.Helper()
	re, err := ralio.Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return re.ID
}
