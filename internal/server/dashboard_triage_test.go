package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/storetest"
)

// Dead-letter triage as support does it: the Deliveries page groups the
// dead deliveries by sink and error; filtered to one sink, it says how
// many match before "retry all" runs, and retries those only.
func TestDashboardTriageRetriesOneSinksDead(t *testing.T) {
	t.Parallel()
	b := newBrowserPage(t)
	ctx := context.Background()
	store := sqlitetest.Open(t)
	o := storetest.NewTriageOutbox(t, store)
	// erp's deliveries die too, with an error of their own.
	now := time.Now().UTC()
	erp, err := store.ClaimDeliveries(ctx, "test", []string{"erp"}, now, time.Minute, 10)
	if err != nil || len(erp) != 3 {
		t.Fatalf("claim erp = %d, %v", len(erp), err)
	}
	var recs []kycd.AttemptRecord
	for _, d := range erp {
		recs = append(recs, kycd.AttemptRecord{DeliveryID: d.ID, Attempt: kycd.Attempt{At: now, Outcome: kycd.AttemptFailed, StatusCode: 500, Error: "erp answered 500"},
			Next: kycd.DeliveryUpdate{State: kycd.DeliveryDead, NextAttemptAt: now, Error: "erp answered 500"}})
	}
	if _, err := store.RecordAttempts(ctx, "test", recs); err != nil {
		t.Fatal(err)
	}
	svc := &app.Service{Store: store}
	if err := svc.RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http"}, {Name: "erp", Type: "http"}}); err != nil {
		t.Fatal(err)
	}
	triageDashboard(t, b, store, "token")
	b.do(chromedp.WaitVisible(`#retry-matching`))
	b.until("the groups", `document.querySelectorAll("#triage-groups tbody tr").length === 3`)
	groups := b.text("#triage-groups")
	for _, want := range []string{o.CRM503, o.CRM400, "erp answered 500"} {
		if !strings.Contains(groups, want) {
			t.Errorf("the groups read %q, lacking %q", groups, want)
		}
	}
	if got := b.text("#retry-matching"); got != "Retry all 6 matching" {
		t.Errorf("the button reads %q before filtering, want all 6 dead", got)
	}
	// Two rows of one notification can be told apart: their ids differ
	// where they are shown.
	b.until("the 6 dead listed", `document.querySelectorAll("#matching tbody tr td:first-child a").length === 6`)
	ids := b.eval(`[...document.querySelectorAll("#matching tbody tr td:first-child a")].map((a) => a.textContent).join(" ")`)
	if n := len(strings.Fields(ids)); n != 6 || len(uniq(strings.Fields(ids))) != 6 {
		t.Errorf("the matching deliveries show the ids %q, want 6 distinct", ids)
	}
	b.screenshot("triage-all-dead")

	b.do(chromedp.SendKeys(`#triage-filter [name="sink"]`, "crm"), click(`#triage-filter button[type="submit"]`))
	b.until("crm's groups only", `document.querySelectorAll("#triage-groups tbody tr").length === 2 && location.hash.includes("sink=crm")`)
	b.until("the count of crm's dead", `document.querySelector("#retry-matching").textContent === "Retry all 3 matching"`)
	b.until("crm's 3 dead listed", `document.querySelectorAll("#matching tbody tr").length === 3`)
	if rows := b.text("#matching tbody"); strings.Contains(rows, "erp") {
		t.Errorf("the matching deliveries of crm read %q", rows)
	}
	b.screenshot("triage-crm-dead")
	b.do(click("#retry-matching"))
	b.until("the retry's answer", `document.querySelector("#retry-matching-result").textContent === "Retried 3 of 3 matching."`)
	b.until("the list refreshed", `document.querySelector("#matching tbody tr.none") !== null`)
	b.screenshot("triage-crm-retried")

	dead, err := store.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead}})
	if err != nil || len(dead) != 3 {
		t.Fatalf("dead after the retry = %d, %v; want erp's 3", len(dead), err)
	}
	for _, d := range dead {
		if d.Sink != "erp" {
			t.Errorf("a dead delivery of %s is left; the retry was of crm's", d.Sink)
		}
	}
	if pending, _ := store.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryPending}, Sink: "crm"}); len(pending) != 3 {
		t.Errorf("crm's pending after the retry = %d, want 3", len(pending))
	}
}

// triageDashboard serves the dashboard over store (triageServer) and signs
// in to its Deliveries page with token.
func triageDashboard(t *testing.T, b *browserPage, store kycd.Store, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(triageServer(t, store))
	t.Cleanup(srv.Close)
	b.do(chromedp.Navigate(srv.URL+"/#/deliveries"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", token),
		click(`#login button[type="submit"]`))
	return srv
}

func uniq(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// A viewer sees the groups but is not offered the retry of all of them,
// which the API would refuse.
func TestDashboardTriageOffersNoRetryToAViewer(t *testing.T) {
	t.Parallel()
	b := newBrowserPage(t)
	store := sqlitetest.Open(t)
	o := storetest.NewTriageOutbox(t, store)
	if err := (&app.Service{Store: store}).AddToken(context.Background(), &kycd.Token{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("viewer-token"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	srv := triageDashboard(t, b, store, "viewer-token")
	b.until("the groups", `document.querySelectorAll("#triage-groups tbody tr").length === 2`)
	if hidden := b.eval(`String(document.querySelector("#retry-matching").hidden)`); hidden != "true" {
		t.Errorf("a viewer is offered %q", b.text("#retry-matching"))
	}

	// The delivery's page: each attempt's status and answer, and the
	// notification as sent.
	refused, err := store.Deliveries(context.Background(), kycd.DeliveryQuery{Sink: "crm", DeliveryMatch: kycd.DeliveryMatch{SessionID: o.S3}})
	if err != nil || len(refused) != 1 {
		t.Fatalf("S3's crm delivery: %d, %v", len(refused), err)
	}
	b.do(chromedp.Navigate(srv.URL+"/#/deliveries/"+refused[0].ID), chromedp.WaitVisible(`#delivery-attempts pre.answer`))
	attempts, payload := b.text("#delivery-attempts"), b.text("#delivery-payload")
	if !strings.Contains(attempts, "400") || !strings.Contains(attempts, `unknown field \"subject\"`) {
		t.Errorf("the attempts read %q, want the status 400 and the answer %s", attempts, o.Body400)
	}
	if !strings.Contains(payload, kycd.NotifySessionVerified) || !strings.Contains(payload, o.S3) {
		t.Errorf("the notification reads %q, want S3's verification", payload)
	}
	b.screenshot("triage-delivery-page")
}
