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
	"github.com/kycd/kycd/internal/sqlite"
)

// The dashboard says who is signed in; an admin sees the audit trail, and
// a viewer neither sees it nor may act: a Retry it tries is refused and
// shown as such.
func TestDashboardShowsWhoIsSignedInAndTheAuditTrail(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
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
	// A dead delivery, for the viewer to try to retry.
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

	srv := httptest.NewServer(h)
	defer srv.Close()
	bctx := newBrowser(t, browser)
	do := func(steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("browser: %v", err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("browser: text of %s: %v", sel, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js)); err != nil {
			t.Fatalf("browser: waiting for %s: %v", what, err)
		}
	}

	// The viewer.
	do(chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "viewer-token"), chromedp.Click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`[data-retry]`))
	poll("the viewer's name", `document.querySelector("#whoami").textContent.includes("support")`)
	if who := text("#whoami"); !strings.Contains(who, "support (viewer)") {
		t.Errorf("signed in as a viewer, the header reads %q", who)
	}
	if hidden, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`document.querySelector("#audit").hidden`)); err != nil || !hidden {
		t.Errorf("a viewer sees the audit trail (hidden %v, %v)", hidden, err)
	}
	// The refusal shows beside the button that caused it.
	const beside = `(() => { const b = document.querySelector("[data-retry]");
		return (b.parentElement.querySelector(".error") || b.closest("tr, p, div").querySelector(".error")).textContent; })()`
	do(chromedp.Click(`[data-retry]`))
	poll("the refusal", beside+` !== ""`)
	if msg, err := chromedp.Run(bctx, chromedp.Evaluate[string](beside)); err != nil || !strings.Contains(msg, "operator") {
		t.Errorf("a viewer's Retry reads %q (%v), want the role it needs", msg, err)
	}
	do(chromedp.Click("#logout"), chromedp.WaitVisible("#login"))

	// The admin.
	do(chromedp.SendKeys("#token", "token"), chromedp.Click(`#login button[type="submit"]`), chromedp.WaitVisible("#audit"))
	poll("the audit trail", `document.querySelector("#audit-trail").textContent.includes("delivery.retry")`)
	if who := text("#whoami"); !strings.Contains(who, "admin (admin)") {
		t.Errorf("signed in as the admin, the header reads %q", who)
	}
	trail := text("#audit-trail")
	for _, want := range []string{"cli:ana", "subject.erase", "support", "delivery.retry", "refused"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail reads %q, lacking %q", trail, want)
		}
	}
	do(chromedp.SendKeys("#audit-actor", "cli:ana"), chromedp.Click(`#audit-filter button[type="submit"]`))
	poll("the filtered trail", `!document.querySelector("#audit-trail").textContent.includes("refused")`)
	if trail := text("#audit-trail"); !strings.Contains(trail, "cli:ana") {
		t.Errorf("the trail filtered by actor reads %q", trail)
	}
}
