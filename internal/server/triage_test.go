package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
	"github.com/kycd/kycd/internal/storetest"
	"github.com/kycd/kycd/ralio"
)

// Dead-letter triage through the API, on both stores: the list's filters,
// the summary, retry and drop by filter (operator), and an attempt's status
// and answer on the delivery; every answer as the document says.

func TestDeliveryTriageSQLite(t *testing.T) {
	t.Parallel()
	testDeliveryTriage(t, sqlitetest.Open(t))
}

func TestDeliveryTriagePostgres(t *testing.T) {
	t.Parallel()
	testDeliveryTriage(t, postgrestest.Open(t, postgrestest.URL(t)))
}

// triageServer is a server over store whose sinks are crm and erp, as
// storetest's triage outbox has them.
func triageServer(t *testing.T, store kycd.Store) http.Handler {
	t.Helper()
	v, err := ralio.NewVerifier(secret)
	if err != nil {
		t.Fatal(err)
	}
	return server.New(server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: store, Verifier: v,
		Ingester: startIngester(t, store, ingest.Options{Sinks: kycd.Routes("crm", "erp")}), AdminToken: "token", Sinks: kycd.Routes("crm", "erp")})
}

func testDeliveryTriage(t *testing.T, store kycd.Store) {
	ctx := context.Background()
	o := storetest.NewTriageOutbox(t, store)
	svc := &app.Service{Store: store}
	for name, role := range map[string]kycd.Role{"viewer-token": kycd.RoleViewer, "operator-token": kycd.RoleOperator} {
		if err := svc.AddToken(ctx, &kycd.Token{Name: string(role), Role: role, Hash: kycd.TokenHash(name), CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	h := triageServer(t, store)
	spec := newSpecValidator(t)
	viewer := []string{"Authorization", viewerBearer}
	operator := []string{"Authorization", operatorBearer, "Content-Type", "application/json"}

	list := func(query string) []*kycd.Delivery {
		t.Helper()
		var page kycd.DeliveryPage
		rec := spec.do(t, h, 200, "GET", "/api/v1/deliveries?"+query, nil, viewer...)
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	third := url.QueryEscape(o.Third.Format(time.RFC3339Nano))
	for query, want := range map[string]int{
		"state=dead":                               3,
		"state=dead&sink=crm&error=503":            2,
		"error=service+UNAVAILABLE":                2,
		"type=kyc.session.verified":                2,
		"session=" + o.S1:                          2,
		"subject=" + o.U2 + "&state=pending":       2,
		"since=" + third:                           2,
		"until=" + third + "&sink=erp":             2,
		"since=" + third + "&until=" + third:       -1, // 400
		"since=yesterday":                          -1,
		"state=dead&error=" + url.QueryEscape("%"): 0,
	} {
		if want < 0 {
			spec.do(t, h, 400, "GET", "/api/v1/deliveries?"+query, nil, viewer...)
			continue
		}
		if got := list(query); len(got) != want {
			t.Errorf("GET /api/v1/deliveries?%s = %d deliveries, want %d", query, len(got), want)
		}
	}

	// An unknown event type that no event has is most likely a typo.
	if rec := spec.do(t, h, 400, "GET", "/api/v1/events?type=kyc_session_faild", nil, viewer...); !strings.Contains(rec.Body.String(), "kyc_session_failed") {
		t.Errorf("events of a mistyped type: %s, want the known types named", rec.Body)
	}

	var sum kycd.DeliverySummary
	if err := json.Unmarshal(spec.do(t, h, 200, "GET", "/api/v1/deliveries/summary?state=dead", nil, viewer...).Body.Bytes(), &sum); err != nil {
		t.Fatal(err)
	}
	want := []kycd.DeliveryGroup{{Sink: "crm", LastError: o.CRM503, Count: 2}, {Sink: "crm", LastError: o.CRM400, Count: 1}}
	if sum.Total != 3 || len(sum.Groups) != 2 || sum.Groups[0] != want[0] || sum.Groups[1] != want[1] {
		t.Errorf("summary of the dead = %+v, want 3 in %+v", sum, want)
	}

	// The delivery page: the attempt's status and the receiver's answer.
	refused := list("session=" + o.S3 + "&sink=crm")
	if len(refused) != 1 {
		t.Fatalf("S3's crm delivery: %d", len(refused))
	}
	var d kycd.Delivery
	if err := json.Unmarshal(spec.do(t, h, 200, "GET", "/api/v1/deliveries/"+refused[0].ID, nil, viewer...).Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 400 || d.Attempts[0].ResponseBody != o.Body400 || len(d.Payload) == 0 {
		t.Errorf("delivery = %+v, want its attempt's status 400 and the answer %s, with the notification", d, o.Body400)
	}

	// A viewer may not retry; an empty filter is refused; a bad one too.
	spec.do(t, h, 403, "POST", "/api/v1/deliveries/retry", []byte(`{"state":"dead"}`), "Authorization", viewerBearer, "Content-Type", "application/json")
	spec.do(t, h, 400, "POST", "/api/v1/deliveries/retry", []byte(`{}`), operator...)
	spec.do(t, h, 400, "POST", "/api/v1/deliveries/drop", nil, operator...)
	spec.do(t, h, 400, "POST", "/api/v1/deliveries/retry", []byte(`{"state":"dead","color":"red"}`), operator...)
	spec.do(t, h, 400, "POST", "/api/v1/deliveries/retry", []byte(`{"state":"lost"}`), operator...)

	var retried server.BulkRetried
	body := []byte(`{"state":"dead","sink":"crm","error":"503"}`)
	if err := json.Unmarshal(spec.do(t, h, 202, "POST", "/api/v1/deliveries/retry", body, operator...).Body.Bytes(), &retried); err != nil {
		t.Fatal(err)
	}
	if retried != (server.BulkRetried{Matched: 2, Retried: 2}) {
		t.Errorf("retry of crm's 503s = %+v, want 2 matched and retried", retried)
	}
	if dead := list("state=dead"); len(dead) != 1 || dead[0].ID != refused[0].ID {
		t.Errorf("dead after the retry = %+v, want only S3's", dead)
	}
	var dropped server.BulkDropped
	body = []byte(`{"subject":"` + o.U2 + `"}`)
	if err := json.Unmarshal(spec.do(t, h, 200, "POST", "/api/v1/deliveries/drop", body, operator...).Body.Bytes(), &dropped); err != nil {
		t.Fatal(err)
	}
	if dropped != (server.BulkDropped{Matched: 4, Dropped: 4}) {
		t.Errorf("drop of U2's = %+v, want 4 matched and dropped", dropped)
	}
	if got := list("state=dropped"); len(got) != 4 {
		t.Errorf("dropped = %d, want 4", len(got))
	}
	page, err := svc.Audit(ctx, kycd.AuditFilter{Target: app.FilterTarget})
	if err != nil || len(page.Items) < 2 || page.Items[0].Actor != string(kycd.RoleOperator) || !strings.Contains(page.Items[0].Detail, "matched 4, changed 4") {
		t.Errorf("audit of the bulk changes = %+v, %v; want the operator's drop first", page, err)
	}
}
