package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/sqlite"
)

// The dashboard says who is signed in; a viewer is offered no action
// (the API would refuse it), and an admin reads the audit trail on a page
// of its own, filtered by actor, action or target; it holds a viewer's
// refused retry.
func TestDashboardShowsWhoIsSignedInAndTheAuditTrail(t *testing.T) {
	t.Parallel()
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	ctx := context.Background()
	if rec := post(t, h, seed(t)); rec.Code != 200 {
		t.Fatalf("seed: %d %s", rec.Code, rec.Body)
	}
	if err := (&app.Service{Store: store}).AddToken(ctx, &kycd.Token{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("viewer-token"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := store.AddAudit(ctx, &kycd.AuditEntry{At: time.Now(), Actor: "cli:ana", Action: kycd.AuditSubjectErase,
		Target: "subject:user:550e8400-e29b-41d4-a716-446655440001", Outcome: kycd.AuditOK, Detail: "eventBodies=1"}); err != nil {
		t.Fatal(err)
	}
	// A dead delivery, which the viewer may not retry.
	var claimed []*kycd.Delivery
	for range 100 {
		var err error
		if claimed, err = store.ClaimDeliveries(ctx, "test", []string{"log"}, time.Now(), time.Minute, 1); err != nil || len(claimed) == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(claimed) != 1 {
		t.Fatal("no delivery to claim")
	}
	if errs, err := store.RecordAttempts(ctx, "test", []kycd.AttemptRecord{{DeliveryID: claimed[0].ID,
		Attempt: kycd.Attempt{At: time.Now(), Outcome: kycd.AttemptRejected, StatusCode: 400, Error: "status 400"},
		Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDead, NextAttemptAt: time.Now(), Error: "status 400"}}}); err != nil || errs[0] != nil {
		t.Fatalf("record = %v, %v", errs, err)
	}
	// The viewer tries anyway, through the API: refused, and audited.
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/deliveries/"+claimed[0].ID+"/retry", nil)
	req.Header.Set("Authorization", "Bearer viewer-token")
	refused := httptest.NewRecorder()
	h.ServeHTTP(refused, req)
	if refused.Code != http.StatusForbidden {
		t.Fatalf("a viewer's retry = %d %s, want 403", refused.Code, refused.Body)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	b := newBrowserPage(t)

	// The viewer: the dead delivery listed, no button to act on it.
	b.signIn(srv.URL+"/", "viewer-token")
	b.do(chromedp.WaitVisible(`#dead [data-delivery="` + claimed[0].ID + `"]`))
	if who := b.text("#whoami"); !strings.Contains(who, "support (viewer)") {
		t.Errorf("signed in as a viewer, the header reads %q", who)
	}
	if n := b.eval(`String(document.querySelectorAll("#app button[data-retry], #app button[data-send], #app button[data-drop], #app button[data-move], #app button[data-resume], #app button[data-replay], #app button[data-discard]").length)`); n != "0" {
		t.Errorf("a viewer is offered %s action buttons on the overview", n)
	}
	if shown := b.eval(`String(!document.querySelector("#nav-audit").hidden || !document.querySelector("#audit").hidden)`); shown != "false" {
		t.Error("a viewer is offered the audit trail")
	}
	b.do(click("#logout"), chromedp.WaitVisible("#login"))

	// The admin: the trail on its own page, not below the overview.
	b.signIn(srv.URL+"/", "token")
	b.do(chromedp.WaitVisible(`#dead [data-retry]`))
	if visible := b.eval(`String(!document.querySelector("#audit").hidden)`); visible != "false" {
		t.Error("the overview shows the audit trail at its bottom")
	}
	b.do(click("#nav-audit"), chromedp.WaitVisible("#audit"))
	b.until("the audit trail", `document.querySelector("#audit-trail").textContent.includes("delivery.retry")`)
	if who := b.text("#whoami"); !strings.Contains(who, "admin (admin)") {
		t.Errorf("signed in as the admin, the header reads %q", who)
	}
	trail := b.text("#audit-trail")
	for _, want := range []string{"cli:ana", "subject.erase", "support", "delivery.retry", "refused"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail reads %q, lacking %q", trail, want)
		}
	}
	b.do(chromedp.SendKeys("#audit-actor", "cli:ana"), click(`#audit-filter button[type="submit"]`))
	b.until("the filtered trail", `!document.querySelector("#audit-trail").textContent.includes("refused")`)
	if trail := b.text("#audit-trail"); !strings.Contains(trail, "cli:ana") {
		t.Errorf("the trail filtered by actor reads %q", trail)
	}
}
