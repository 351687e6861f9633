package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// signIn opens the dashboard at url (a page's own URL, or the root) and
// signs in with token, waiting for the page to know whose token it is.
func (b *browserPage) signIn(url, token string) {
	b.t.Helper()
	b.do(chromedp.Navigate(url), chromedp.WaitVisible("#login"),
		chromedp.SendKeys("#token", token), click(`#login button[type="submit"]`))
	b.until("the signed-in token's name", `document.querySelector("#whoami").textContent !== ""`)
}

// search types q in the search box and sends it.
func (b *browserPage) search(q string) {
	b.t.Helper()
	b.do(chromedp.SetValue("#q", q), click(`#search button[type="submit"]`))
}

// errorsShown is every error text on screen, joined.
func (b *browserPage) errorsShown() string {
	b.t.Helper()
	return b.eval(`[...document.querySelectorAll(".error")].filter((e) => e.offsetParent !== null).map((e) => e.textContent).join(" | ")`)
}

// supportDesk is the dashboard as support and operations meet it: two
// rejected sessions whose notifications the merchant's endpoint refused
// (dead), the second one's dropped by an operator, a conflicting copy of
// the first event quarantined, and a viewer's token, "support".
type supportDesk struct {
	srv                 *httptest.Server
	merchant            *merchant
	store               kycd.Store
	session, subject    string // the seed's session and its subject
	event               string // the seed's event
	dead                string // the seed's delivery, dead
	other, dropped      string // the second session, and its delivery, dropped
	conflict            string // the quarantined conflicting copy
	otherEvent, otherNo string // the second session's event and notification
}

func newSupportDesk(t *testing.T) *supportDesk {
	t.Helper()
	m := &merchant{}
	h, store := newDispatchingServer(t, m)
	ctx := context.Background()
	d := &supportDesk{merchant: m, store: store, session: "550e8400-e29b-41d4-a716-446655440002",
		subject: "550e8400-e29b-41d4-a716-446655440001", event: "550e8400-e29b-41d4-a716-446655440000",
		other: uuid.NewString(), otherEvent: uuid.NewString()}
	second := strings.NewReplacer(d.event, d.otherEvent, d.session, d.other).Replace(string(seed(t)))
	for _, body := range [][]byte{seed(t), []byte(second)} {
		if rec := post(t, h, body); rec.Code != 200 {
			t.Fatalf("post: %d %s", rec.Code, rec.Body)
		}
	}
	if rec := post(t, h, bytes.Replace(seed(t), []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_IMAGE"), 1)); rec.Code != 409 {
		t.Fatalf("conflict: %d %s", rec.Code, rec.Body)
	}
	if caught, err := ingest.CaughtUp(ctx, store, 5*time.Second, nil); !caught {
		t.Fatalf("not projected: %v", err)
	}
	svc := &app.Service{Store: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	d.otherNo = kycd.NotificationID(d.otherEvent)
	for deadline := time.Now().Add(10 * time.Second); (d.dead == "" || d.dropped == "") && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		page, err := svc.Deliveries(ctx, kycd.DeliveryFilter{State: kycd.DeliveryDead})
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range page.Items {
			switch dl.NotificationID {
			case kycd.NotificationID(d.event):
				d.dead = dl.ID
			case d.otherNo:
				d.dropped = dl.ID
			}
		}
	}
	if d.dead == "" || d.dropped == "" {
		t.Fatal("the two notifications never died against an endpoint answering 400")
	}
	if _, err := svc.DropDelivery(ctx, app.Actor{Name: "ops"}, d.dropped); err != nil {
		t.Fatal(err)
	}
	items, err := store.Quarantine(ctx, false, 10)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine = %+v, %v", items, err)
	}
	d.conflict = items[0].ID
	if err := svc.AddToken(ctx, &kycd.Token{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("viewer-token"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	d.srv = httptest.NewServer(h)
	t.Cleanup(d.srv.Close)
	return d
}

// actionButtons counts the buttons on screen that change something.
const actionButtons = `String([...document.querySelectorAll("#app [data-retry], #app [data-send], #app [data-drop], #app [data-move], #app [data-resume], #app [data-replay], #app [data-discard]")].filter((e) => e.offsetParent !== null).length)`

// A viewer, support's role, finds a session by its id and by its first 8
// digits with the one search, lands on it without an error, and is offered
// no action on any page; the quarantined body shows what the list gives
// them. The state bugs stay fixed, on one server.
func TestDashboardForEveryRole(t *testing.T) {
	t.Parallel()
	chromium(t)
	d := newSupportDesk(t)

	t.Run("ViewerSearchesAndSeesNoActions", func(t *testing.T) {
		b := newBrowserPage(t)
		// The sign-in page shows neither the navigation nor the search box.
		b.do(chromedp.Navigate(d.srv.URL+"/"), chromedp.WaitVisible("#login"))
		if shown := b.eval(`["#nav", "#search", "#logout"].map((s) => getComputedStyle(document.querySelector(s)).display).join(" ")`); shown != "none none none" {
			t.Errorf("the sign-in page shows the navigation, search box and sign-out as %q; want all hidden", shown)
		}
		b.screenshot("dashboard-sign-in")
		b.signIn(d.srv.URL+"/", "viewer-token")
		b.until("the overview", `document.querySelector('#dead [data-delivery]') !== null`)

		// A whole id opens the session.
		b.search(d.session)
		b.until("the session's page", `location.hash === "#/sessions/`+d.session+`" && document.querySelector('[data-delivery-state="`+d.dead+`"]') !== null`)
		if errs := b.errorsShown(); errs != "" {
			t.Errorf("a viewer's search of a session id shows errors: %q", errs)
		}
		b.screenshot("dashboard-viewer-session")
		if n := b.eval(actionButtons); n != "0" {
			t.Errorf("a viewer is offered %s action buttons on a session's page", n)
		}
		// Its first 8 digits open the other session (nothing else shares them).
		b.search(strings.ToUpper(d.other[:8]))
		b.until("the session of the prefix", `location.hash === "#/sessions/`+d.other+`" && document.querySelector('[data-delivery-state="`+d.dropped+`"]') !== null`)
		if errs := b.errorsShown(); errs != "" {
			t.Errorf("a viewer's search of %s shows errors: %q", d.other[:8], errs)
		}
		// A notification's id opens its session, the notification marked.
		b.search(d.otherNo)
		b.until("the notification's session", `location.hash.startsWith("#/sessions/`+d.other+`?notification=") && document.querySelector('[data-notification="`+d.otherNo+`"].highlight') !== null`)
		// Eight digits several records share: listed, each a link.
		b.search(d.session[:8])
		b.until("the list of what begins with "+d.session[:8], `document.querySelectorAll("#results-list li").length >= 3`)
		found := b.text("#results-list")
		for _, want := range []string{"Session " + d.session, "Subject " + d.subject, "Event " + d.event} {
			if !strings.Contains(found, want) {
				t.Errorf("the search of %s lists %q, lacking %q", d.session[:8], found, want)
			}
		}

		// The quarantined body: what the list gives a viewer, no body, no
		// error, no action.
		b.do(chromedp.Navigate(d.srv.URL + "/#/quarantine/" + d.conflict))
		b.until("the quarantined body's page", `document.querySelector("#quarantined-about").textContent.includes("conflict")`)
		about, errs, body := b.text("#quarantined-about"), b.errorsShown(), b.eval(`document.querySelector("#quarantined-body").textContent`)
		b.screenshot("dashboard-viewer-quarantined")
		if !strings.Contains(about, "409") || !strings.Contains(about, "Received") || !strings.Contains(about, d.event) || !strings.Contains(about, "is stored with another body") || errs != "" || body != "" {
			t.Errorf("a viewer's quarantined body reads %q (errors %q, body %q); want its reason, answer, time, event and why no replay, no body, no error", about, errs, body)
		}
		for _, page := range []struct{ hash, ready string }{
			{"#/", `document.querySelector('#dead [data-delivery]') !== null`},
			{"#/deliveries", `document.querySelector('#dead [data-delivery]') !== null`},
			{"#/quarantine", `document.querySelector('[data-view-quarantined]') !== null`},
			{"#/quarantine/" + d.conflict, `document.querySelector("#quarantined-about").textContent !== ""`},
			{"#/deliveries/" + d.dead, `document.querySelector("#delivery-about").textContent.includes("dead")`},
			{"#/events/" + d.event, `document.querySelector("#event-about").textContent.includes("kyc_session_failed")`},
		} {
			b.do(chromedp.Navigate(d.srv.URL + "/" + page.hash))
			b.until(page.hash, page.ready)
			if n, errs := b.eval(actionButtons), b.errorsShown(); n != "0" || errs != "" {
				t.Errorf("a viewer on %s is offered %s action buttons and shown errors %q", page.hash, n, errs)
			}
		}
	})

	t.Run("StateBugsStayFixed", func(t *testing.T) {
		b := newBrowserPage(t)
		b.signIn(d.srv.URL+"/", "token")
		b.until("the overview", `document.querySelector('#dead [data-retry]') !== null`)
		// The audit trail is not at the bottom of the overview.
		if shown := b.eval(`String(getComputedStyle(document.querySelector("#audit")).display !== "none" || !document.querySelector("#object-audit").hidden)`); shown != "false" {
			t.Error("the overview shows an audit trail")
		}
		// A failed search says why beside the box, and is gone on the next page.
		b.search("ana.garcia@example.com")
		b.until("the search's refusal", `document.querySelector("#search-error").textContent !== ""`)
		refused := b.text("#search-error")
		b.do(click("#nav-quarantine"))
		b.until("the quarantine's page", `location.hash === "#/quarantine" && document.querySelector("#quarantine").offsetParent !== null`)
		if left := b.eval(`document.querySelector("#search-error").textContent`); !strings.Contains(refused, "8") || strings.Contains(refused, "ana.garcia") || left != "" {
			t.Errorf("a search of an e-mail address says %q, and on the next page %q; want why (not quoting the address), then nothing", refused, left)
		}

		// The session's page: its own audit entries, not the other
		// session's drop; a retry updates the delivery and the trail.
		b.do(chromedp.Navigate(d.srv.URL + "/#/sessions/" + d.session))
		b.until("the session's audit trail", `!document.querySelector("#object-audit").hidden && document.querySelector('[data-send="`+d.dead+`"]') !== null`)
		if trail := b.text("#object-audit"); strings.Contains(trail, "delivery.drop") || strings.Contains(trail, d.dropped) {
			t.Errorf("the session's audit trail reads %q, with the other session's drop", trail)
		}
		d.merchant.accept.Store(true)
		b.do(click(`[data-send="` + d.dead + `"]`))
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-delivery-state="`+d.dead+`"]')?.textContent === "delivered" &&
			document.querySelector("#object-audit-trail").textContent.includes("delivery.retry")`))
		cancel()
		if err != nil {
			t.Errorf("5 s after a retry on the session's page it reads %q and its trail %q; want delivered and the retry listed", b.text("#notifications"), b.text("#object-audit"))
		}
		b.screenshot("dashboard-session-after-retry")

		// A dropped delivery offers no retry, on its session's page or its own.
		b.do(chromedp.Navigate(d.srv.URL + "/#/sessions/" + d.other))
		b.until("the dropped delivery", `document.querySelector('[data-delivery-state="`+d.dropped+`"]')?.textContent === "dropped"`)
		if n := b.eval(actionButtons); n != "0" {
			t.Errorf("the session of a dropped delivery offers %s actions", n)
		}
		b.do(chromedp.Navigate(d.srv.URL + "/#/deliveries/" + d.dropped))
		b.until("the dropped delivery's page", `document.querySelector("#delivery-about").textContent.includes("dropped") && !document.querySelector("#object-audit").hidden`)
		if n, trail := b.eval(actionButtons), b.text("#object-audit"); n != "0" || !strings.Contains(trail, "delivery.drop") || !strings.Contains(trail, "ops") {
			t.Errorf("a dropped delivery's page offers %s actions, its trail reads %q; want none, and the drop by ops", n, trail)
		}

		// The conflict: the lines that differ marked, in both bodies, and
		// no other.
		b.do(chromedp.Navigate(d.srv.URL + "/#/quarantine/" + d.conflict))
		b.until("the two bodies", `document.querySelectorAll("#quarantined-original-body .line").length > 0`)
		var marked [2][]string
		for i, sel := range []string{"#quarantined-body", "#quarantined-original-body"} {
			js := `JSON.stringify([...document.querySelectorAll("` + sel + ` [data-differs]")].map((l) => l.textContent.trim()))`
			if err := json.Unmarshal([]byte(b.eval(js)), &marked[i]); err != nil {
				t.Fatal(err)
			}
		}
		b.screenshot("dashboard-conflict")
		if len(marked[0]) != 1 || !strings.Contains(marked[0][0], "BLURRY_IMAGE") || len(marked[1]) != 1 || !strings.Contains(marked[1][0], "EXPIRED_DOCUMENT") {
			t.Errorf("the conflict marks %q in the refused body and %q in the original; want the one line of each that differs", marked[0], marked[1])
		}
	})

	t.Run("EveryViewAt390px", func(t *testing.T) {
		b := newBrowserPage(t)
		b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		b.do(chromedp.Navigate(d.srv.URL+"/"), chromedp.WaitVisible("#login"))
		views := []struct{ name, hash, ready string }{
			{"sign-in", "", `document.querySelector("#login").offsetParent !== null`},
		}
		views = append(views, []struct{ name, hash, ready string }{
			{"overview", "#/", `document.querySelector('#dead tbody tr') !== null && document.querySelector("#chart").childNodes.length > 0`},
			{"deliveries", "#/deliveries", `document.querySelector('#sinks tbody tr') !== null && document.querySelector('#dead tbody tr') !== null`},
			{"quarantine", "#/quarantine", `document.querySelector('[data-view-quarantined]') !== null`},
			{"session", "#/sessions/" + d.session, `document.querySelector('[data-delivery-state="` + d.dead + `"]') !== null && !document.querySelector("#object-audit").hidden`},
			{"subject", "#/subjects/" + d.subject + "?type=user", `document.querySelectorAll("#subject-sessions [data-session]").length === 2`},
			{"event", "#/events/" + d.event, `document.querySelector("#event-body").textContent !== ""`},
			{"delivery", "#/deliveries/" + d.dead, `document.querySelector("#delivery-attempts tbody tr") !== null`},
			{"quarantined", "#/quarantine/" + d.conflict, `document.querySelectorAll("#quarantined-original-body .line").length > 0`},
			{"search", "#/search?q=" + d.session[:8], `document.querySelectorAll("#results-list li").length >= 3`},
			{"audit", "#/audit", `document.querySelectorAll("#audit-trail tbody tr").length > 1`},
		}...)
		for i, v := range views {
			if i == 1 {
				b.signIn(d.srv.URL+"/", "token")
			}
			if v.hash != "" {
				b.do(chromedp.Navigate(d.srv.URL + "/" + v.hash))
			}
			b.until("the "+v.name+" view", v.ready)
			width := b.eval(`String(document.documentElement.scrollWidth)`)
			wide := b.eval(`JSON.stringify([...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 391).slice(0, 5).map((e) => e.tagName + "#" + e.id + "." + e.className))`)
			b.screenshot("dashboard-390-" + v.name)
			if width != "390" {
				t.Errorf("the %s view at 390 px is %s px wide (elements past the edge: %s); want no horizontal scroll", v.name, width, wide)
			}
		}
	})
}
