package emulator_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// Any web page a developer opens could POST to the control API on
// localhost (a text/plain form needs no preflight) and verify a session.
// A browser's cross-site request is refused, with nothing done; curl and
// kycd's own clients, which send neither Origin nor Sec-Fetch-Site, are not.
func TestControlAPIRefusesCrossSiteRequests(t *testing.T) {
	t.Parallel()
	f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", nil)
	s := f.newSession(t, userID)
	outcome := f.URL + "/emulator/v1/sessions/" + s.ID + "/outcome"
	post := func(header map[string]string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, outcome, strings.NewReader(`{"event":"kyc_session_verified"}`))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, h := range []map[string]string{
		{"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
		{"Content-Type": "text/plain", "Sec-Fetch-Site": "same-site"},
		{"Content-Type": "text/plain", "Origin": "https://evil.example"}, // a browser without Sec-Fetch-Site
		{"Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"},
	} {
		if status := post(h); status != http.StatusForbidden {
			t.Errorf("POST outcome with %v = %d, want 403", h, status)
		}
	}
	var h historyJSON
	f.must(t, http.MethodGet, "/api/v1/account/users/"+userID+"/identity-verifications/"+s.ID+"/state-history", nil, http.StatusOK, &h)
	if len(h.Logs) != 1 {
		t.Fatalf("cross-site requests changed the session: %+v", h.Logs)
	}
	// curl -d, as docs/emulator.md shows it: a form content type, no browser headers.
	if status := post(map[string]string{"Content-Type": "application/x-www-form-urlencoded"}); status != http.StatusOK {
		t.Errorf("POST outcome as curl sends it = %d, want 200", status)
	}
	if status := post(map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}); status != http.StatusConflict && status != http.StatusOK {
		t.Errorf("same-origin POST outcome = %d, want it let through", status)
	}
}
