package server_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/testenv"
)

// chromium finds the browser of the dashboard test. Without one the test
// skips, unless KYCD_TEST_REQUIRE_SERVICES=1 (CI, whose script installs
// Debian's chromium), where it fails.
func chromium(t *testing.T) string {
	t.Helper()
	if path, ok := testenv.ChromiumPath(); ok {
		return path
	}
	const how = "install Debian's chromium (apt-get install chromium) or set KYCD_TEST_CHROMIUM"
	if os.Getenv("KYCD_TEST_REQUIRE_SERVICES") == "1" {
		t.Fatal("no chromium but KYCD_TEST_REQUIRE_SERVICES=1: " + how)
	}
	t.Skip("no chromium: " + how)
	return ""
}

// sharedBrowser is the one headless chromium of this package's tests,
// started by the first test that needs it and stopped by TestMain: a
// browser starts in about a second, a tab in a few milliseconds.
var sharedBrowser struct {
	once sync.Once
	ctx  context.Context
	stop context.CancelFunc
	err  error
}

// newBrowser opens a tab for one test in the package's chromium at path, in
// a browser context of its own (no cookies or storage shared with another
// test), closed when the test ends, its steps bounded in time.
func newBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	sharedBrowser.once.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path),
			chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-background-networking", true))
		actx, stopAllocator := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, stopBrowser := chromedp.NewContext(actx)
		sharedBrowser.ctx = bctx
		sharedBrowser.stop = func() { stopBrowser(); stopAllocator() }
		sharedBrowser.err = chromedp.Do(bctx) // starts the browser
	})
	if sharedBrowser.err != nil {
		t.Fatalf("start chromium: %v", sharedBrowser.err)
	}
	tctx, cancel := chromedp.NewContext(sharedBrowser.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	tctx, cancel = context.WithTimeout(tctx, 90*time.Second)
	t.Cleanup(cancel)
	return tctx
}

// stopBrowser stops the package's chromium, if a test started it.
func stopBrowser() {
	if sharedBrowser.stop != nil {
		sharedBrowser.stop()
	}
}

// The dashboard as a person uses it: type the token, see the sessions by
// status and the rejection chart, open a session's reasons, retry a dead
// delivery and replay a quarantined body.
func TestDashboardInABrowser(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	ctx := context.Background()

	if rec := post(t, h, seed(t)); rec.Code != 200 {
		t.Fatalf("seed: %d %s", rec.Code, rec.Body)
	}
	// The seed is from 2025; a copy from today lands in the chart's window.
	today := strings.NewReplacer(
		"550e8400-e29b-41d4-a716-446655440000", uuid.NewString(),
		"550e8400-e29b-41d4-a716-446655440002", uuid.NewString(),
		"2025-06-19T17:14:13.123Z", time.Now().UTC().Format(time.RFC3339Nano),
	).Replace(string(seed(t)))
	if rec := post(t, h, []byte(today)); rec.Code != 200 {
		t.Fatalf("today's rejection: %d %s", rec.Code, rec.Body)
	}
	if caught, err := ingest.CaughtUp(ctx, store, 5*time.Second, nil); !caught {
		t.Fatalf("the two events were not projected: %v", err)
	}
	// A dead delivery: the seed's notification, refused for good.
	claimed, err := store.ClaimDeliveries(ctx, "test", []string{"log"}, time.Now(), time.Minute, 1)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim = %v, %v", claimed, err)
	}
	if errs, err := store.RecordAttempts(ctx, "test", []kycd.AttemptRecord{{DeliveryID: claimed[0].ID,
		Attempt: kycd.Attempt{At: time.Now(), Outcome: kycd.AttemptRejected, StatusCode: 410, Error: "status 410: gone"},
		Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDead, NextAttemptAt: time.Now(), Error: "status 410: gone"}}}); err != nil || errs[0] != nil {
		t.Fatalf("record = %v, %v", errs, err)
	}
	// A quarantined body that is valid now: replaying it verifies a session.
	replayed := uuid.NewString()
	body := `{"id":"` + uuid.NewString() + `","event":"kyc_session_verified","timestamp":"2026-11-25T10:00:00.000Z","data":{"sessionId":"` + replayed + `","userId":"550e8400-e29b-41d4-a716-446655440001"}}`
	if err := store.AddQuarantine(ctx, &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now(), Reason: kycd.QuarantineInvalid,
		Problem: []byte(`{"type":"about:blank","title":"Invalid Ralio event","status":400,"detail":"x","errors":[{"field":"data.sessionId","detail":"is required"}]}`),
		Body:    []byte(body)}); err != nil {
		t.Fatal(err)
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
		chromedp.Click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#statuses .status-REJECTED`))
	tiles := text("#statuses")
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector('#chart rect[data-code="EXPIRED_DOCUMENT"]') !== null`)); err != nil {
		t.Fatalf("browser: waiting for the chart: %v", err)
	}
	bars, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("#chart rect").length`))
	if err != nil {
		t.Fatal(err)
	}
	legend := text("#chart .legend")
	do(chromedp.Click(`[data-session="550e8400-e29b-41d4-a716-446655440002"]`), chromedp.WaitVisible("#session"))
	checks := text("#checks")
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(90))
	if err != nil {
		t.Fatal(err)
	}
	// The session has a page of its own; dead deliveries and the
	// quarantine are on the overview.
	do(chromedp.Click(`#nav-overview`), chromedp.WaitVisible(`#dead [data-retry]`))
	// A click answers at once on its button, then reloads the page's lists:
	// wait for the reload (the list no longer offering the action and its
	// empty text in place) before reading what it shows.
	settled := func(list, empty string) {
		t.Helper()
		js := fmt.Sprintf(`document.querySelector(%q).innerText.includes(%q)`, list, empty)
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js)); err != nil {
			t.Fatalf("%s never read %q: %v", list, empty, err)
		}
	}
	// The overview's lists are drawn again when a refresh lands, which can
	// replace a button between finding it and clicking it: click it by a
	// query at the moment of the click instead of by a node found earlier.
	click := func(sel string) {
		t.Helper()
		js := fmt.Sprintf(`(() => { const b = document.querySelector(%q); if (!b) return false; b.click(); return true })()`, sel)
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js)); err != nil {
			t.Fatalf("browser: no %s to click: %v", sel, err)
		}
	}
	click(`[data-retry]`)
	do(chromedp.WaitNotPresent(`[data-retry]`))
	settled("#dead", "No dead deliveries")
	dead := text("#dead")
	click(`[data-replay]`)
	do(chromedp.WaitNotPresent(`[data-replay]`))
	settled("#quarantine", "Nothing in quarantine")
	quarantine := text("#quarantine")
	do(chromedp.WaitVisible(`[data-session="` + replayed + `"]`))
	sessions := text("#sessions")
	if shotPath := os.Getenv("KYCD_DASHBOARD_SCREENSHOT"); shotPath != "" {
		if err := os.WriteFile(filepath.Clean(shotPath), shot, 0o644); err != nil {
			t.Errorf("KYCD_DASHBOARD_SCREENSHOT: %v", err)
		}
	}
	for _, want := range []string{"REJECTED", "2"} {
		if !strings.Contains(tiles, want) {
			t.Errorf("status tiles %q lack %q", tiles, want)
		}
	}
	if bars != 2 || !strings.Contains(legend, "EXPIRED_DOCUMENT (1)") || !strings.Contains(legend, "NO_MATCH (1)") {
		t.Errorf("chart has %d bars and legend %q; want one bar per code of the seed", bars, legend)
	}
	for _, want := range []string{"document-verification", "EXPIRED_DOCUMENT", "The provided document has expired", "face-matching", "NO_MATCH"} {
		if !strings.Contains(checks, want) {
			t.Errorf("session checks %q lack %q", checks, want)
		}
	}
	if !strings.Contains(dead, "No dead deliveries") {
		t.Errorf("after Retry the dead list reads %q", dead)
	}
	if !strings.Contains(quarantine, "Nothing in quarantine") {
		t.Errorf("after Replay the quarantine reads %q", quarantine)
	}
	if !strings.Contains(sessions, "VERIFIED") {
		t.Errorf("after Replay the sessions read %q, want the replayed VERIFIED session", sessions)
	}
	if d, _ := store.Delivery(ctx, claimed[0].ID); d == nil || d.State != kycd.DeliveryPending {
		t.Errorf("after Retry the delivery is %+v, want pending again", d)
	}
}

func TestDashboardRefusesAWrongToken(t *testing.T) {
	t.Parallel()
	browser := chromium(t)
	h, _ := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	srv := httptest.NewServer(h)
	defer srv.Close()
	bctx := newBrowser(t, browser)
	err := chromedp.Do(bctx,
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "not-the-token"),
		chromedp.Click(`#login button[type="submit"]`),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if _, err := chromedp.Run(bctx, chromedp.Poll[bool](`document.querySelector("#login-error").textContent !== ""`)); err != nil {
		t.Fatalf("browser: waiting for the login error: %v", err)
	}
	msg, err := chromedp.Run(bctx, chromedp.Text("#login-error"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "refused") {
		t.Fatalf("login error = %q, want the token refused", msg)
	}
}
