package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/dispatch"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sink/httpsink"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/ralio"
)

// timezone makes the browser's zone id (an IANA name), as a support person
// elsewhere would have it.
func timezone(id string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: id})
		return err
	})
}

// browserPage is a headless Chromium tab for one test.
type browserPage struct {
	t   *testing.T
	ctx context.Context
}

func newBrowserPage(t *testing.T) *browserPage {
	t.Helper()
	browser := chromium(t)
	bctx := newBrowser(t, browser)
	b := &browserPage{t: t, ctx: bctx}
	b.do(chromedp.EmulateViewport(1280, 900))
	return b
}

func (b *browserPage) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

func (b *browserPage) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", sel, err)
	}
	return s
}

// until waits for a JavaScript condition, saying what it waited for.
func (b *browserPage) until(what, js string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js)); err != nil {
		b.t.Fatalf("browser: waiting for %s: %v", what, err)
	}
}

func (b *browserPage) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("browser: %s: %v", js, err)
	}
	return s
}

// screenshot saves a PNG of the whole page as a test artifact: under
// $KYCD_TEST_ARTIFACTS (.ci/run keeps them in .ci/artifacts), else in the
// test's temporary directory.
func (b *browserPage) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot: %v", err)
	}
	dir := os.Getenv("KYCD_TEST_ARTIFACTS")
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// merchant is an HTTP endpoint of the merchant's that refuses
// notifications (400: dead at once) until it is told to take them.
type merchant struct {
	mu       sync.Mutex
	accept   atomic.Bool
	received []string // webhook-id of each notification taken
}

func (m *merchant) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	if !m.accept.Load() {
		http.Error(w, "not today", http.StatusBadRequest)
		return
	}
	m.mu.Lock()
	m.received = append(m.received, r.Header.Get("webhook-id"))
	m.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (m *merchant) took(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.received {
		if r == id {
			return true
		}
	}
	return false
}

// newDispatchingServer is a server whose notifications go to one http
// sink, "crm", at the merchant's endpoint, sent by a running dispatcher
// that a retry wakes, as kycd serve wires them.
func newDispatchingServer(t *testing.T, m *merchant) (http.Handler, *sqlite.Store) {
	t.Helper()
	endpoint := httptest.NewServer(m)
	t.Cleanup(endpoint.Close)
	store := sqlitetest.Open(t)
	sink, err := httpsink.New(endpoint.URL, []string{"whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(dispatch.Options{Store: store, Sinks: map[string]kycd.Sink{"crm": sink}, Poll: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := (&app.Service{Store: store}).RegisterSinks(context.Background(), []kycd.SinkInfo{{Name: "crm", Type: "http", Target: endpoint.URL}}); err != nil {
		t.Fatal(err)
	}
	v, err := ralio.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(server.Options{
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Store:          store,
		Verifier:       v,
		Ingester:       startIngester(t, store, ingest.Options{Sinks: kycd.Routes("crm"), Guide: kycd.DefaultGuidance().For, Notified: d.Wake}),
		AdminToken:     "token",
		WakeDispatcher: d.Wake,
	}), store
}

// The dashboard as support uses it: find a person by their subject id,
// open their session by a link that survives a reload, read what they
// were told and what the merchant's systems were sent, and send a
// notification that was refused again, from the session's page.
func TestDashboardSupportFindsASessionAndRetriesItsNotification(t *testing.T) {
	t.Parallel()
	m := &merchant{}
	h, store := newDispatchingServer(t, m)
	ctx := context.Background()
	const (
		sessionID = "550e8400-e29b-41d4-a716-446655440002"
		subjectID = "550e8400-e29b-41d4-a716-446655440001"
	)
	// The rejection; an older review of the same session that reconciliation
	// found late (stale); a later session of the same user, verified.
	later := uuid.NewString()
	bodies := [][]byte{
		seed(t),
		[]byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_manual_review","timestamp":"2025-06-18T09:00:00.000Z","kycdSource":"reconciliation",
			"data":{"sessionId":"` + sessionID + `","userId":"` + subjectID + `"}}`),
		[]byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_verified","timestamp":"2025-06-21T08:00:00.000Z",
			"data":{"sessionId":"` + later + `","userId":"` + subjectID + `","checks":[]}}`),
	}
	for _, b := range bodies {
		if rec := post(t, h, b); rec.Code != 200 {
			t.Fatalf("post: %d %s", rec.Code, rec.Body)
		}
	}
	if caught, err := ingest.CaughtUp(ctx, store, 5*time.Second, nil); !caught {
		t.Fatalf("the events were not projected: %v", err)
	}
	// The merchant refused the rejection's notification: dead at once.
	rejection := kycd.NotificationID("550e8400-e29b-41d4-a716-446655440000")
	var dead *kycd.Delivery
	for deadline := time.Now().Add(10 * time.Second); dead == nil && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page, err := (&app.Service{Store: store}).Deliveries(ctx, kycd.DeliveryFilter{State: kycd.DeliveryDead})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.NotificationID == rejection {
				dead = d
			}
		}
	}
	if dead == nil {
		t.Fatal("the rejection's delivery never died against an endpoint answering 400")
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	b := newBrowserPage(t)
	// Support in India: times show at UTC+05:30.
	b.do(timezone("Asia/Kolkata"),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`#dead [data-retry]`))
	deadRow := b.text("#dead")
	b.screenshot("dashboard-overview-dead-delivery")

	// Search by subject id: the subject's page lists both sessions.
	b.do(chromedp.SendKeys("#q", strings.ToUpper(subjectID)), click(`#search button[type="submit"]`), chromedp.WaitVisible(`#subject-sessions [data-session="`+sessionID+`"]`))
	subjectPage, subjectHash := b.text("#subject"), b.eval(`location.hash`)

	// Open the session, then reload its URL.
	b.do(click(`#subject-sessions [data-session="`+sessionID+`"]`), chromedp.WaitVisible("#session"))
	b.until("the session's notifications", `document.querySelector('[data-delivery-state="`+dead.ID+`"]') !== null`)
	hash := b.eval(`location.hash`)
	b.do(chromedp.Reload(), chromedp.WaitVisible("#session"))
	b.until("the session's notifications after the reload", `document.querySelector('[data-delivery-state="`+dead.ID+`"]') !== null`)
	reloaded, reloadedID := b.eval(`location.hash`), b.text("#session-id")
	status, checks, history, others := b.text("#session-status"), b.text("#checks"), b.text("#history"), b.text("#other-sessions")
	notifications := b.text("#notifications")
	utc := b.eval(`document.querySelector("#session-status time").title`)
	b.screenshot("dashboard-session")

	// Search by event id: the stale review's session opens, the event marked.
	review := string(bodies[1][7:43])
	b.do(chromedp.SetValue("#q", review), click(`#search button[type="submit"]`))
	b.until("the event's session", `location.hash.startsWith("#/sessions/`+sessionID+`?event=") && document.querySelector("#history tr.highlight") !== null`)
	marked := b.text("#history tr.highlight")

	// Send it again from the session's page, the merchant taking it now.
	m.accept.Store(true)
	b.do(click(`[data-send="` + dead.ID + `"]`))
	b.until("the delivery delivered", `document.querySelector('[data-delivery-state="`+dead.ID+`"]')?.textContent === "delivered"`)
	after := b.text(`[data-notification="` + rejection + `"]`)

	// The delivery's own page lists both attempts; the event's, its body.
	b.do(click(`[data-notification="` + rejection + `"] a[href="#/deliveries/` + dead.ID + `"]`))
	b.until("the delivery's page", `document.querySelectorAll("#delivery-attempts tbody tr").length === 2`)
	deliveryPage := b.text("#delivery")
	b.do(chromedp.NavigateBack(), chromedp.WaitVisible("#session"),
		click(`#session-status a[href="#/events/550e8400-e29b-41d4-a716-446655440000"]`), chromedp.WaitVisible("#event-body"))
	eventPage := b.text("#event")

	// A search for nothing says so beside the search box.
	b.do(chromedp.SetValue("#q", uuid.NewString()), click(`#search button[type="submit"]`))
	b.until("the search's answer", `document.querySelector("#search-error").textContent !== ""`)
	nothing := b.text("#search-error")

	for _, want := range []string{sessionID, subjectID, "user " + subjectID} {
		if !strings.Contains(deadRow, want) {
			t.Errorf("the dead delivery reads %q, not naming %q", deadRow, want)
		}
	}
	if !strings.Contains(subjectPage, sessionID) || !strings.Contains(subjectPage, later) || !strings.Contains(subjectPage, "2 sessions") {
		t.Errorf("searching the subject id shows %q (%s); want its two sessions", subjectPage, subjectHash)
	}
	if want := "#/sessions/" + sessionID; hash != want || reloaded != want || reloadedID != sessionID {
		t.Errorf("session URL %q, after reload %q showing %q; want %q to survive the reload", hash, reloaded, reloadedID, want)
	}
	// 17:14:13.123 UTC is 22:44:13 in India.
	if !strings.Contains(status, "REJECTED since 2025-06-19 22:44:13 GMT+5:30") || utc != "2025-06-19 17:14:13.123 UTC" {
		t.Errorf("status reads %q, UTC on hover %q; want the local time shown and UTC on hover", status, utc)
	}
	for _, want := range []string{"EXPIRED_DOCUMENT", kycd.DefaultGuidance().For("EXPIRED_DOCUMENT"), "NO_MATCH", kycd.DefaultGuidance().For("NO_MATCH")} {
		if !strings.Contains(checks, want) {
			t.Errorf("checks read %q, lacking %q", checks, want)
		}
	}
	for _, want := range []string{"kyc_session_manual_review", "stale", "reconciliation", "kyc_session_failed", "applied", "webhook", "2025-06-18 14:30:00 GMT+5:30"} {
		if !strings.Contains(history, want) {
			t.Errorf("history reads %q, lacking %q", history, want)
		}
	}
	if !strings.Contains(others, later) || strings.Contains(others, sessionID) {
		t.Errorf("other sessions read %q; want the later one only", others)
	}
	for _, want := range []string{"kyc.session.rejected", "crm", "dead", "1 attempt", "400", kycd.DefaultGuidance().For("EXPIRED_DOCUMENT")} {
		if !strings.Contains(notifications, want) {
			t.Errorf("notifications read %q, lacking %q", notifications, want)
		}
	}
	if !strings.Contains(marked, "kyc_session_manual_review") || !strings.Contains(marked, "stale") {
		t.Errorf("searching the review's event id marks %q in the history; want the stale review", marked)
	}
	if !m.took(rejection) {
		t.Errorf("the merchant never took notification %s after the retry", rejection)
	}
	if d, err := store.Delivery(ctx, dead.ID); err != nil || d.State != kycd.DeliveryDelivered || len(d.Attempts) != 2 {
		t.Errorf("after the retry the delivery is %+v, %v; want delivered at its second attempt", d, err)
	}
	if !strings.Contains(after, "delivered") || !strings.Contains(after, "2 attempts") {
		t.Errorf("after the retry the notification reads %q; want delivered after 2 attempts", after)
	}
	for _, want := range []string{"delivered", "400", "kyc.session.rejected", sessionID, "Send again"} {
		if !strings.Contains(deliveryPage, want) {
			t.Errorf("the delivery's page reads %q, lacking %q", deliveryPage, want)
		}
	}
	for _, want := range []string{"kyc_session_failed", "applied", sessionID, `"code": "EXPIRED_DOCUMENT"`} {
		if !strings.Contains(eventPage, want) {
			t.Errorf("the event's page reads %q, lacking %q", eventPage, want)
		}
	}
	if !strings.Contains(nothing, "Nothing has the id") {
		t.Errorf("a search for an unknown id says %q", nothing)
	}
}

// The quarantine as an operator uses it: a conflict is not offered for
// replay (its original is stored), its two bodies are shown side by side,
// and it is discarded, kept with who did it.
func TestDashboardQuarantineShowsBodiesAndDiscards(t *testing.T) {
	t.Parallel()
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	ctx := context.Background()
	if rec := post(t, h, seed(t)); rec.Code != 200 {
		t.Fatalf("seed: %d %s", rec.Code, rec.Body)
	}
	if caught, err := ingest.CaughtUp(ctx, store, 5*time.Second, nil); !caught {
		t.Fatalf("not projected: %v", err)
	}
	changed := bytes.Replace(seed(t), []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_IMAGE"), 1)
	if rec := post(t, h, changed); rec.Code != 409 {
		t.Fatalf("conflict: %d %s", rec.Code, rec.Body)
	}
	items, err := store.Quarantine(ctx, false, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine = %+v, %v", items, err)
	}
	id := items[0].ID

	srv := httptest.NewServer(h)
	defer srv.Close()
	b := newBrowserPage(t)
	b.do(chromedp.Navigate(srv.URL+"/#/quarantine"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`),
		chromedp.WaitVisible(`[data-view-quarantined="`+id+`"]`))
	list := b.text("#quarantine")
	replayButtons := b.eval(`String(document.querySelectorAll("#quarantine [data-replay]").length)`)
	b.do(click(`[data-view-quarantined="`+id+`"]`), chromedp.WaitVisible("#quarantined-body"))
	body, original, about := b.text("#quarantined-body"), b.text("#quarantined-original-body"), b.text("#quarantined-about")
	b.do(click(`#quarantined [data-discard]`), click(`#quarantined [data-discard]`))
	b.until("the discard", `document.querySelector("#quarantined-about").textContent.includes("discarded")`)

	if replayButtons != "0" || !strings.Contains(list, "is stored with another body") {
		t.Errorf("the conflict is listed as %q with %s Replay buttons; want none, and why", list, replayButtons)
	}
	if !strings.Contains(body, "BLURRY_IMAGE") || !strings.Contains(original, "EXPIRED_DOCUMENT") || strings.Contains(original, "BLURRY_IMAGE") {
		t.Errorf("bodies shown: refused %q, original %q; want both, each its own", body, original)
	}
	if !strings.Contains(about, "conflict") || !strings.Contains(about, "409") {
		t.Errorf("the item reads %q", about)
	}
	q, err := store.QuarantineItem(ctx, id)
	if err != nil || q.DiscardedAt.IsZero() || q.DiscardedBy != "admin" || len(q.Body) == 0 {
		t.Errorf("after Discard the item is %+v, %v; want it kept, marked discarded by admin (the token's name)", q, err)
	}
	var problem map[string]any
	if json.Unmarshal(q.Problem, &problem) != nil {
		t.Errorf("the item's problem is no longer JSON: %s", q.Problem)
	}
}

// The rejection chart stays readable whatever the window: a year of data
// in months, a day in days, each with few labels; the codes beyond the
// palette together as "other". A code of the ranking, and a day of the
// filters, list their sessions.
func TestDashboardRejectionReasonsOverADayAndAYear(t *testing.T) {
	t.Parallel()
	h, store := newServer(t, func(s *sqlite.Store) kycd.Store { return s })
	ctx := context.Background()
	now := time.Now().UTC()
	if err := (&app.Service{Store: store, Now: func() time.Time { return now }}).RegisterSinks(ctx, []kycd.SinkInfo{{Name: "log", Type: "log"}}); err != nil {
		t.Fatal(err)
	}
	codes := []string{"EXPIRED_DOCUMENT", "NO_MATCH", "LOW_CONFIDENCE", "BLURRY_IMAGE", "UNSUPPORTED_DOCUMENT",
		"DOCUMENT_NOT_FULLY_SHOWN", "KYC.DOC.DETERIORATED", "KYC.FACE.MASK", "KYC.LIVENESS.SPOOF", "KYC.DOC.GLARE"}
	reject := func(at time.Time, code string) {
		t.Helper()
		body := `{"id":"` + uuid.NewString() + `","event":"kyc_session_failed","timestamp":"` + at.Format("2006-01-02T15:04:05.000Z") + `",
			"data":{"sessionId":"` + uuid.NewString() + `","userId":"` + uuid.NewString() + `","checks":[{"type":"document-verification","state":"Refused",
			"reasons":[{"type":"document","code":"` + code + `","message":"m"}]}]}}`
		if rec := post(t, h, []byte(body)); rec.Code != 200 {
			t.Fatalf("post: %d %s", rec.Code, rec.Body)
		}
	}
	// Over a year: every fifth day, the codes in turn, the first ones more
	// often; and three today.
	for day := 1; day < 360; day += 5 {
		reject(now.Add(-time.Duration(day)*24*time.Hour), codes[(day/5)%len(codes)])
		if day%3 == 0 {
			reject(now.Add(-time.Duration(day)*24*time.Hour), codes[0])
		}
	}
	for _, code := range codes[:3] {
		reject(now.Add(-time.Minute), code)
	}
	if caught, err := ingest.CaughtUp(ctx, store, 10*time.Second, nil); !caught {
		t.Fatalf("not projected: %v", err)
	}

	srv := httptest.NewServer(h)
	defer srv.Close()
	b := newBrowserPage(t)
	b.do(timezone("UTC"),
		chromedp.Navigate(srv.URL+"/#/?window=8760h"),
		chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", "token"),
		click(`#login button[type="submit"]`))
	type chart struct{ Buckets, Labels, Rects, Ranked, Legend int }
	read := func(what string) chart {
		t.Helper()
		b.until(what, `document.querySelector("#chart svg") !== null`)
		js := `JSON.stringify({
			Buckets: new Set([...document.querySelectorAll("#chart rect")].map((r) => r.getAttribute("x"))).size,
			Labels: document.querySelectorAll("#chart text.x").length,
			Rects: document.querySelectorAll("#chart rect").length,
			Ranked: document.querySelectorAll("#reasons .rank").length,
			Legend: document.querySelectorAll("#chart .legend [data-code]").length})`
		var c chart
		if err := json.Unmarshal([]byte(b.eval(js)), &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	year := read("a year's chart")
	ranking := b.text("#reasons")
	other := b.eval(`String(document.querySelectorAll('#chart rect[data-code="other"]').length)`)
	b.screenshot("dashboard-overview-year")
	// A code of the ranking lists the sessions rejected for it.
	b.do(click(`#reasons [data-code-link="KYC.FACE.MASK"]`))
	b.until("the sessions rejected for KYC.FACE.MASK", `document.querySelector("#sessions-filter").textContent.includes("KYC.FACE.MASK") && document.querySelectorAll("#sessions tbody tr").length === 7`)
	filtered, filterCode := b.text("#sessions"), b.eval(`document.querySelector("#filters [name=code]").value`)
	// A day of the date filters: the two rejections of six days ago.
	sixDaysAgo := now.Add(-6 * 24 * time.Hour).Format("2006-01-02")
	b.do(click(`#clear-filters`))
	b.until("the filters cleared", `location.hash === "#/" && document.querySelector("#filters [name=code]").value === ""`)
	b.do(chromedp.SetValue(`#filters [name=since]`, sixDaysAgo), chromedp.SetValue(`#filters [name=until]`, sixDaysAgo),
		click(`#filters button[type="submit"]`))
	b.until("the sessions of six days ago", `document.querySelector("#sessions-filter").textContent === "(from `+sixDaysAgo+`, to `+sixDaysAgo+`)"`)
	oneDay, oneDayHash := b.text("#sessions tbody"), b.eval(`location.hash`)
	b.do(chromedp.Navigate(srv.URL + "/#/?window=24h"))
	b.until("the day's chart", `location.hash === "#/?window=24h" && document.querySelector("#window").value === "24h" && document.querySelectorAll("#chart rect").length === 3`)
	day := read("a day's chart")
	b.do(chromedp.Navigate(srv.URL + "/#/"))
	b.until("the week's chart", `document.querySelector("#window").value === "168h" && document.querySelectorAll("#chart rect").length > 3`)
	b.screenshot("dashboard-overview")

	// A year: 12 or 13 months, every one labelled; the 8 colours and the
	// rest as other, in the legend and the ranking.
	if year.Buckets < 10 || year.Buckets > 13 || year.Labels < 10 || year.Labels > 13 {
		t.Errorf("a year's chart has %d bars' places and %d labels; want one per month", year.Buckets, year.Labels)
	}
	if year.Legend != 8 || year.Ranked != 9 || other == "0" || !strings.Contains(ranking, "2 other codes") {
		t.Errorf("a year's chart: legend %d, ranking %d lines (%q), %s grey bars; want 8 codes, 8 + the 2 others", year.Legend, year.Ranked, ranking, other)
	}
	if !strings.Contains(ranking, "EXPIRED_DOCUMENT") || strings.Index(ranking, "EXPIRED_DOCUMENT") > strings.Index(ranking, "NO_MATCH") {
		t.Errorf("ranking reads %q; want EXPIRED_DOCUMENT, the most frequent, first", ranking)
	}
	if strings.Count(filtered, "REJECTED") != 7 || filterCode != "KYC.FACE.MASK" {
		t.Errorf("sessions rejected for KYC.FACE.MASK read %q (code filter %q); want its 7 rejections", filtered, filterCode)
	}
	if strings.Count(oneDay, "REJECTED") != 2 || !strings.Contains(oneDay, sixDaysAgo) || !strings.Contains(oneDayHash, "since="+sixDaysAgo) {
		t.Errorf("sessions from and to %s read %q (%s); want its two rejections, the filter in the URL", sixDaysAgo, oneDay, oneDayHash)
	}
	// A day: the day before and today at most, the three codes of today.
	if day.Buckets < 1 || day.Buckets > 2 || day.Labels > 2 || day.Rects != 3 || day.Ranked != 3 {
		t.Errorf("a day's chart = %+v; want today's three codes in one or two days", day)
	}
}
