package server_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite"
)

// The dashboard as an operator uses it when a sink was removed and another
// is paused by a 410: the orphaned deliveries say so and are moved or
// dropped, the paused sink says so and is resumed.
func TestDashboardOrphansAndPausedSink(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	ctx := context.Background()
	other := strings.NewReplacer(
		"550e8400-e29b-41d4-a716-446655440000", uuid.NewString(),
		"550e8400-e29b-41d4-a716-446655440002", uuid.NewString(),
	).Replace(string(seed(t)))
	for _, body := range [][]byte{seed(t), []byte(other)} {
		if rec := post(t, h, body); rec.Code != 200 {
			t.Fatalf("post: %d %s", rec.Code, rec.Body)
		}
	}
	if caught, err := ingest.CaughtUp(ctx, store, 5*time.Second, nil); !caught {
		t.Fatalf("the events were not projected: %v", err)
	}
	// This server's deliveries go to log; the configuration now has crm
	// only, whose endpoint answered 410.
	if err := (&app.Service{Store: store}).RegisterSinks(ctx, []kycd.SinkInfo{{Name: "crm", Type: "http", Target: "https://crm.example/kyc?token=xxxxx"}}); err != nil {
		t.Fatal(err)
	}
	if err := (&app.Service{Store: store}).PauseSink(ctx, "crm", "https://crm.example/kyc?token=xxxxx answered 410 Gone"); err != nil {
		t.Fatal(err)
	}
	orphans, err := (&app.Service{Store: store}).Deliveries(ctx, kycd.DeliveryFilter{Orphaned: true})
	if err != nil || len(orphans.Items) != 2 {
		t.Fatalf("orphans = %+v, %v; want 2", orphans, err)
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
	do(chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#orphaned [data-move]`),
		chromedp.WaitVisible(`[data-resume="crm"]`))
	orphaned, sinks := text("#orphaned"), text("#sinks")
	if strings.Count(orphaned, "sink not configured") != 2 {
		t.Errorf("orphaned deliveries read %q, want both flagged", orphaned)
	}
	for _, want := range []string{"crm", "paused since", "410 Gone", "log", "not configured"} {
		if !strings.Contains(sinks, want) {
			t.Errorf("sinks read %q, lacking %q", sinks, want)
		}
	}
	moved, dropped := orphans.Items[0].ID, orphans.Items[1].ID
	do(click(`[data-move="`+moved+`"]`), chromedp.WaitNotPresent(`[data-move="`+moved+`"]`))
	do(click(`[data-drop="`+dropped+`"]`), chromedp.WaitNotPresent(`[data-drop="`+dropped+`"]`))
	if left := text("#orphaned"); !strings.Contains(left, "No orphaned deliveries") {
		t.Errorf("after Move and Drop the orphans read %q", left)
	}
	do(click(`[data-resume="crm"]`), chromedp.WaitNotPresent(`[data-resume]`))

	if d, err := store.Delivery(ctx, moved); err != nil || d.Sink != "crm" || d.State != kycd.DeliveryPending || len(d.Actions) != 1 || d.Actions[0].Actor != kycd.AdminTokenName {
		t.Errorf("moved delivery = %+v, %v; want crm's, pending, the move noted", d, err)
	}
	if d, err := store.Delivery(ctx, dropped); err != nil || d.State != kycd.DeliveryDropped {
		t.Errorf("dropped delivery = %+v, %v; want dropped", d, err)
	}
	if ks, _ := (&app.Service{Store: store}).ListSinks(ctx); len(ks) == 0 || ks[0].Name != "crm" || !ks[0].PausedAt.IsZero() {
		t.Errorf("sinks after Resume = %+v, want crm not paused", ks)
	}
}
