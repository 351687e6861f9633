package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite"
)

// The dashboard lists the sessions someone should follow up, with why and
// for how long, and opens them like any session.
func TestDashboardListsStalledSessions(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	now := time.Now().UTC()
	stamp := func(d time.Duration) string { return now.Add(d).Format("2006-01-02T15:04:05.000Z") }
	reviewed, invited, fresh := uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, body := range []string{
		fmt.Sprintf(`{"eventId":%q,"eventType":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
			uuid.NewString(), stamp(-74*time.Hour), reviewed, uuid.NewString()),
		fmt.Sprintf(`{"eventId":%q,"eventType":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
			uuid.NewString(), stamp(-time.Hour), fresh, uuid.NewString()),
		fmt.Sprintf(`{"eventId":%q,"eventType":"related_party.kyc_session_created","timestamp":%q,"data":{"businessUser":{"id":1},
			"relatedParty":{"id":%q,"email":"ana@example.com"},"kycSession":{"id":%q,"url":"https://verify.example.com/x","expiresAt":%q}}}`,
			uuid.NewString(), stamp(-8*24*time.Hour), uuid.NewString(), invited, stamp(-26*time.Hour)),
	} {
		if rec := post(t, h, []byte(body)); rec.Code != 200 {
			t.Fatalf("post: %d %s", rec.Code, rec.Body)
		}
	}
	if caught, err := ingest.CaughtUp(context.Background(), store, 5*time.Second, nil); !caught {
		t.Fatalf("the events were not projected: %v", err)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	bctx := newBrowser(t, browser)
	// The page shows times in the browser's zone: UTC here, as the
	// expiry below is written.
	if err := chromedp.Do(bctx,
		timezone("UTC"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#stalled [data-reason="invitation_expired"]`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	stalled, err := chromedp.Run(bctx, chromedp.Text("#stalled"))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(bctx, click(`#stalled [data-session="`+invited+`"]`), chromedp.WaitVisible("#session")); err != nil {
		t.Fatalf("browser: open the invitation: %v", err)
	}
	opened, err := chromedp.Run(bctx, chromedp.Text("#session-status"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{reviewed, "review_overdue", "in REVIEW for 3d 2h", invited, "invitation_expired", "expired 1d 2h ago"} {
		if !strings.Contains(stalled, want) {
			t.Errorf("stalled sessions read %q, lacking %q", stalled, want)
		}
	}
	if strings.Contains(stalled, fresh) {
		t.Errorf("stalled sessions read %q, listing the review of an hour ago", stalled)
	}
	if strings.Contains(stalled, "ana@example.com") {
		t.Errorf("stalled sessions show the invitation's contact details: %q", stalled)
	}
	if !strings.Contains(opened, "NOT_STARTED") || !strings.Contains(opened, "invitation expires "+now.Add(-26*time.Hour).Format("2006-01-02 15:04:05")) {
		t.Errorf("the opened invitation reads %q, want NOT_STARTED with its expiry", opened)
	}
	// The invitation listed first: its status is the oldest.
	if strings.Index(stalled, invited) > strings.Index(stalled, reviewed) {
		t.Errorf("stalled sessions read %q, want the oldest status first", stalled)
	}
}
