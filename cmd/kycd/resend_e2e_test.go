package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

// TestResendIsAuditedAlikeFromTheAPIAndTheCLI: POST
// /api/v1/notifications/{id}/resend and kycd resend are one use case, so
// both write notification.resend on notification:<id> with the same
// outcome and detail, each naming its actor (the token; cli:USER), a
// refused resend as much as one done.
func TestResendIsAuditedAlikeFromTheAPIAndTheCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.deliver(t, example(t, "a-kyc_session_failed.json"))
	wantStatus(t, s.session(t, failedSession), string(kycd.StatusRejected))
	db := "sqlite:" + s.DB
	id := kycd.NotificationID(failedEventID)
	target := kycd.AuditTarget("notification", id)

	resend := func(sink string) answer {
		t.Helper()
		body := []byte(`{"sink":"` + sink + `"}`)
		return s.mustDo(t, newRequest(http.MethodPost, s.URL+"/api/v1/notifications/"+id+"/resend", body,
			http.Header{"Authorization": {"Bearer " + s.Token}, "Content-Type": {"application/json"}}))
	}
	if a := resend("log"); a.status != http.StatusAccepted {
		t.Fatalf("API resend = %s, want 202", a)
	}
	mustCLI(t, "resend", "--notification", id, "--sink", "log", "--database", db)
	if a := resend("crm"); a.status != http.StatusBadRequest {
		t.Fatalf("API resend to a sink not configured = %s, want 400", a)
	}
	if msg := wantCLIError(t, "resend", "--notification", id, "--sink", "crm", "--database", db); !strings.Contains(msg, `sink "crm" is not configured`) {
		t.Fatalf("kycd resend --sink crm: %s", msg)
	}

	// Newest first: the CLI's refusal, the API's, the CLI's resend, the
	// API's.
	got := s.auditTrail(t, "&action="+kycd.AuditNotificationResend)
	if len(got) != 4 {
		t.Fatalf("notification.resend entries = %+v, want 4", got)
	}
	cliRefused, apiRefused, cliDone, apiDone := got[0], got[1], got[2], got[3]
	for _, pair := range [][2]auditView{{apiDone, cliDone}, {apiRefused, cliRefused}} {
		api, cli := pair[0], pair[1]
		if api.Target != target || cli.Target != target || api.Outcome != cli.Outcome || api.Detail != cli.Detail {
			t.Errorf("API entry %+v and CLI entry %+v differ; want the same target %s, outcome and detail", api, cli, target)
		}
		if api.Actor != kycd.AdminTokenName || !strings.HasPrefix(cli.Actor, "cli:") || api.Remote == "" || cli.Remote != "" {
			t.Errorf("actors: API %q from %q, CLI %q from %q; want the token's name with its address, and cli:USER", api.Actor, api.Remote, cli.Actor, cli.Remote)
		}
	}
	if apiDone.Outcome != kycd.AuditOK || apiDone.Detail != "sink log" {
		t.Errorf("a resend's entry = %+v, want ok, detail \"sink log\"", apiDone)
	}
	if apiRefused.Outcome != kycd.AuditFailed || !strings.Contains(apiRefused.Detail, `sink "crm" is not configured`) {
		t.Errorf("a refused resend's entry = %+v, want failed, saying why", apiRefused)
	}
}

// TestDiscardIsAuditedAlikeFromTheAPIAndTheCLI: kycd quarantine discard
// and POST /api/v1/quarantine/{id}/discard give a body up the same way and
// write the same quarantine.discard entry, each naming its actor; a second
// discard is refused by both, and audited so.
func TestDiscardIsAuditedAlikeFromTheAPIAndTheCLI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for range 2 {
		if a := s.post(t, []byte(`{"id":"nope","event":"kyc_session_failed"}`)); a.status != http.StatusBadRequest {
			t.Fatalf("an invalid body = %s, want 400", a)
		}
	}
	items := s.quarantine(t, "")
	if len(items) != 2 {
		t.Fatalf("quarantine = %+v, want the 2 refused bodies", items)
	}
	db := "sqlite:" + s.DB
	viaAPI, viaCLI := items[0].ID, items[1].ID
	discard := func(id string) answer {
		t.Helper()
		return s.api(t, http.MethodPost, "/api/v1/quarantine/"+id+"/discard")
	}
	if a := discard(viaAPI); a.status != http.StatusOK {
		t.Fatalf("API discard = %s, want 200", a)
	}
	if out := mustCLI(t, "quarantine", "discard", viaCLI, "--database", db); !strings.Contains(out, "discarded "+viaCLI) {
		t.Fatalf("kycd quarantine discard printed %q", out)
	}
	if left := s.quarantine(t, ""); len(left) != 0 {
		t.Fatalf("pending quarantine after both discards = %+v, want none", left)
	}
	if a := discard(viaCLI); a.status != http.StatusConflict {
		t.Fatalf("API discard of a body the CLI discarded = %s, want 409", a)
	}
	if msg := wantCLIError(t, "quarantine", "discard", viaAPI, "--database", db); !strings.Contains(msg, "discarded already") {
		t.Fatalf("kycd quarantine discard of a body the API discarded: %s", msg)
	}

	entry := func(id string) (ok, failed auditView) {
		t.Helper()
		for _, e := range s.auditTrail(t, "&action="+kycd.AuditQuarantineDiscard+"&target="+kycd.AuditTarget("quarantine", id)) {
			switch e.Outcome {
			case kycd.AuditOK:
				ok = e
			case kycd.AuditFailed:
				failed = e
			}
		}
		return ok, failed
	}
	apiOK, cliFailed := entry(viaAPI)
	cliOK, apiFailed := entry(viaCLI)
	if apiOK.Actor != kycd.AdminTokenName || apiOK.Remote == "" || !strings.HasPrefix(cliOK.Actor, "cli:") || cliOK.Remote != "" || apiOK.Detail != cliOK.Detail {
		t.Errorf("discards: API %+v, CLI %+v; want the token's name with its address, and cli:USER, alike", apiOK, cliOK)
	}
	if apiFailed.Actor != kycd.AdminTokenName || !strings.HasPrefix(cliFailed.Actor, "cli:") ||
		!strings.Contains(apiFailed.Detail, "discarded already (by "+cliOK.Actor+")") || !strings.Contains(cliFailed.Detail, "discarded already (by "+kycd.AdminTokenName+")") {
		t.Errorf("refused discards: API %+v, CLI %+v; want both failed, naming who discarded it first", apiFailed, cliFailed)
	}
}
