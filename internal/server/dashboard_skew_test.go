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

// A session's page marks an event stamped far after its receipt, and says
// when it is ordered.
func TestDashboardMarksClockSkew(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	sid, skewed := uuid.NewString(), uuid.NewString()
	for _, body := range []string{
		fmt.Sprintf(`{"id":%q,"event":"kyc_session_failed","timestamp":"2099-01-01T00:00:00.000Z","data":{"sessionId":%q,"userId":%q,"checks":[]}}`,
			skewed, sid, uuid.NewString()),
		fmt.Sprintf(`{"id":%q,"event":"kyc_session_manual_review","timestamp":%q,"data":{"sessionId":%q,"userId":%q}}`,
			uuid.NewString(), time.Now().UTC().Add(-time.Hour).Format("2006-01-02T15:04:05.000Z"), sid, uuid.NewString()),
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
	if err := chromedp.Do(bctx,
		timezone("UTC"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#statuses`),
		chromedp.Navigate(srv.URL+"/#/sessions/"+sid),
		chromedp.WaitVisible(`#history [data-clock-skew="`+skewed+`"]`),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	history, err := chromedp.Run(bctx, chromedp.Text("#history"))
	if err != nil {
		t.Fatal(err)
	}
	marked, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#history [data-clock-skew]").length`))
	if err != nil {
		t.Fatal(err)
	}
	if marked != 1 || !strings.Contains(history, "2099") || !strings.Contains(history, "clock skew") || !strings.Contains(history, "ordered at") {
		t.Errorf("history reads %q with %d entries marked; want the 2099 event alone marked clock skew, with the time it is ordered at", history, marked)
	}
}
