package main

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

// TestEventBodyReadIsAuditedFromTheAPIAndTheCLI: a raw body is personal
// data, and reading it is recorded the same way whichever front end reads
// it: GET /api/v1/events/{id} as the token's name, kycd events get --body
// as cli:USER, each with action event.read, target event:<id>, outcome
// ok. Without --body the CLI reads no body and records nothing.
func TestEventBodyReadIsAuditedFromTheAPIAndTheCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	db := "sqlite:" + s.DB

	if a := s.api(t, http.MethodGet, "/api/v1/events/"+failedEventID); a.status != http.StatusOK || !bytes.Contains(a.body, []byte(`"body"`)) {
		t.Fatalf("GET /api/v1/events/%s = %s, want 200 with the body", failedEventID, a)
	}
	if out := mustCLI(t, "events", "get", failedEventID, "--database", db); strings.Contains(out, "\nBody\n") || !strings.Contains(out, "--body shows it") {
		t.Fatalf("kycd events get without --body printed:\n%s", out)
	}
	if n := len(s.auditTrail(t, "&action="+kycd.AuditEventRead)); n != 1 {
		t.Fatalf("%d event.read entries after the API's read and a read without --body, want 1", n)
	}
	out := mustCLI(t, "events", "get", failedEventID, "--body", "--database", db)
	if !strings.Contains(out, "\nBody\n") || !strings.Contains(out, failedSession) {
		t.Fatalf("kycd events get --body printed no body:\n%s", out)
	}

	var api, cliRead *auditView
	entries := s.auditTrail(t, "&action="+kycd.AuditEventRead)
	for i := range entries {
		e := &entries[i]
		switch {
		case strings.HasPrefix(e.Actor, "cli"):
			cliRead = e
		default:
			api = e
		}
	}
	if len(entries) != 2 || api == nil || cliRead == nil {
		t.Fatalf("event.read entries = %+v, want one from the API and one from the CLI", entries)
	}
	for _, e := range []*auditView{api, cliRead} {
		if e.Action != kycd.AuditEventRead || e.Target != "event:"+failedEventID || e.Outcome != kycd.AuditOK || e.At == "" {
			t.Errorf("audit entry %+v, want %s of event:%s, ok", e, kycd.AuditEventRead, failedEventID)
		}
	}
	if api.Remote != "127.0.0.1" || cliRead.Remote != "" || !strings.HasPrefix(cliRead.Actor, "cli:") {
		t.Errorf("the API's entry %+v and the CLI's %+v: want the remote address for the API, cli:USER and none for the CLI", api, cliRead)
	}

	// An unknown event read with --body is recorded as failed, as the
	// API records it.
	if _, err := cli(t, "events", "get", "9f0e1d2c-3b4a-4596-8877-665544332211", "--body", "--database", db); err == nil {
		t.Fatal("kycd events get --body of an unknown event succeeded")
	}
	failed := s.auditTrail(t, "&action="+kycd.AuditEventRead+"&target=event:9f0e1d2c-3b4a-4596-8877-665544332211")
	if len(failed) != 1 || failed[0].Outcome != kycd.AuditFailed || !strings.HasPrefix(failed[0].Detail, kycd.ENOTFOUND) {
		t.Errorf("the failed read's entries = %+v, want one, failed, not_found", failed)
	}
}
