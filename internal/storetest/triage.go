package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// TriageOutbox is an outbox to triage: three sessions (two of one
// subject), each notified to crm and erp; crm answered 503 for the first
// two and refused the third (400, with a body), all dead; erp's are
// pending.
type TriageOutbox struct {
	S1, S2, S3     string    // sessions: S1 of U1, S2 and S3 of U2 (S3 verified, the others rejected)
	U1, U2         string    // subjects
	Third          time.Time // when S3's deliveries were created, after the others'
	CRM503, CRM400 string    // crm's last errors
	Body400        string    // what crm answered S3's delivery
}

// NewTriageOutbox records the outbox of TriageOutbox in s: the dead
// letter a test of triage starts from.
func NewTriageOutbox(t *testing.T, s kycd.Store) TriageOutbox {
	t.Helper()
	ctx := context.Background()
	o := TriageOutbox{S1: uuid.NewString(), S2: uuid.NewString(), S3: uuid.NewString(), U1: uuid.NewString(), U2: uuid.NewString(),
		CRM503: "crm answered 503 Service Unavailable", CRM400: "crm refused it: 400 Bad Request", Body400: `{"error":"unknown field \"subject\""}`}
	in := newPipeline(t, s, "crm", "erp")
	for i, e := range []struct {
		session, subject string
		status           kycd.Status
	}{{o.S1, o.U1, kycd.StatusRejected}, {o.S2, o.U2, kycd.StatusRejected}, {o.S3, o.U2, kycd.StatusVerified}} {
		if i == 2 {
			time.Sleep(10 * time.Millisecond) // s3's deliveries are created after the others'
		}
		ev := sessionEvent(e.session, e.status, time.Duration(i)*time.Second)
		ev.Subject = kycd.SubjectRef{Type: kycd.SubjectUser, ID: e.subject}
		if _, err := ingestWith(in, ev); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	claimed, err := s.ClaimDeliveries(ctx, "triage", []string{"crm"}, now, time.Minute, 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim crm = %d, %v; want 3", len(claimed), err)
	}
	var recs []kycd.AttemptRecord
	for _, d := range claimed {
		d.NameConcerned()
		msg, code, body := o.CRM503, 503, `{"error":"down for maintenance"}`
		if d.SessionID == o.S3 {
			msg, code, body = o.CRM400, 400, o.Body400
			o.Third = d.CreatedAt
		}
		recs = append(recs, kycd.AttemptRecord{DeliveryID: d.ID,
			Attempt: kycd.Attempt{At: now, DurationMS: 3, Outcome: kycd.AttemptRejected, StatusCode: code, Error: msg, ResponseBody: body},
			Next:    kycd.DeliveryUpdate{State: kycd.DeliveryDead, NextAttemptAt: now, Error: msg}})
	}
	if errs, err := s.RecordAttempts(ctx, "triage", recs); err != nil || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatalf("record = %v, %v", errs, err)
	}
	if o.Third.IsZero() {
		t.Fatal("no crm delivery concerns the third session")
	}
	return o
}

// testDeliveryFilters: Deliveries and DeliverySummary select by state,
// sink, notification type, session, subject, creation time and a piece of
// the last error (in any case, as plain text), and MatchingDeliveries
// selects the same in a transaction; an attempt keeps the receiver's
// answer.
func testDeliveryFilters(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	o := NewTriageOutbox(t, s)
	dead := []string{kycd.DeliveryDead}
	for name, c := range map[string]struct {
		q    kycd.DeliveryQuery
		want int
	}{
		"every":                {kycd.DeliveryQuery{}, 6},
		"dead":                 {kycd.DeliveryQuery{States: dead}, 3},
		"sink erp":             {kycd.DeliveryQuery{Sink: "erp"}, 3},
		"type verified":        {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Type: kycd.NotifySessionVerified}}, 2},
		"session s1":           {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{SessionID: o.S1}}, 2},
		"subject u2":           {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{SubjectID: o.U2}}, 4},
		"subject u2 dead":      {kycd.DeliveryQuery{States: dead, DeliveryMatch: kycd.DeliveryMatch{SubjectID: o.U2}}, 2},
		"since the third":      {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Since: o.Third}}, 2},
		"until the third":      {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Until: o.Third}}, 4},
		"error in other case":  {kycd.DeliveryQuery{Sink: "crm", DeliveryMatch: kycd.DeliveryMatch{Error: "SERVICE unavailable"}}, 2},
		"error 400":            {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Error: "400"}}, 1},
		"error is plain text":  {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Error: "%"}}, 0},
		"error of no delivery": {kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{Error: "timeout"}}, 0},
	} {
		got, err := s.Deliveries(ctx, c.q)
		if err != nil || len(got) != c.want {
			t.Errorf("%s: Deliveries = %d rows, %v; want %d", name, len(got), err, c.want)
		}
		groups, err := s.DeliverySummary(ctx, c.q)
		total := 0
		for _, g := range groups {
			total += g.Count
		}
		if err != nil || total != c.want {
			t.Errorf("%s: DeliverySummary = %+v, %v; want %d in all", name, groups, err, c.want)
		}
	}
	groups, err := s.DeliverySummary(ctx, kycd.DeliveryQuery{})
	want := []kycd.DeliveryGroup{{Sink: "erp", Count: 3}, {Sink: "crm", LastError: o.CRM503, Count: 2}, {Sink: "crm", LastError: o.CRM400, Count: 1}}
	if err != nil || !slices.Equal(groups, want) {
		t.Errorf("DeliverySummary of every delivery = %+v, %v; want %+v (largest first)", groups, err, want)
	}
	inTx(t, s, func(tx kycd.Tx) error {
		rows, err := tx.MatchingDeliveries(ctx, kycd.DeliveryQuery{Sink: "crm", DeliveryMatch: kycd.DeliveryMatch{Error: "503", SubjectID: o.U2}})
		if err != nil || len(rows) != 1 || rows[0].State != kycd.DeliveryDead || rows[0].Sink != "crm" {
			t.Errorf("MatchingDeliveries = %+v, %v; want s2's dead crm delivery", rows, err)
		}
		return err
	})
	list, _ := s.Deliveries(ctx, kycd.DeliveryQuery{DeliveryMatch: kycd.DeliveryMatch{SessionID: o.S3, Error: "400"}})
	if len(list) != 1 {
		t.Fatalf("s3's refused delivery: %d rows", len(list))
	}
	d, err := s.Delivery(ctx, list[0].ID)
	if err != nil || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 400 || d.Attempts[0].ResponseBody != o.Body400 {
		t.Fatalf("Delivery = %+v, %v; want its attempt with status 400 and the answer's body", d, err)
	}
}

// testBulkByFilter: the application layer retries and drops, in one
// audited transaction each, the pending and dead deliveries a filter
// selects, counting what it matched and what it changed; an empty filter
// is refused.
func testBulkByFilter(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	o := NewTriageOutbox(t, s)
	svc := &app.Service{Store: s}
	ana := app.Actor{Name: "ana"}
	if _, err := svc.RetryMatching(ctx, ana, kycd.DeliverySelector{}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("retry by an empty filter: %v, want EINVALID", err)
	}
	if _, err := svc.DropMatching(ctx, ana, kycd.DeliverySelector{State: "gone"}); kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("drop by an unknown state: %v, want EINVALID", err)
	}
	sum, err := svc.DeliverySummary(ctx, kycd.DeliverySelector{State: kycd.DeliveryDead, Sink: "crm", DeliveryMatch: kycd.DeliveryMatch{Error: "503"}})
	if err != nil || sum.Total != 2 || len(sum.Groups) != 1 || sum.Groups[0].LastError != o.CRM503 {
		t.Fatalf("summary = %+v, %v; want the two 503s", sum, err)
	}
	res, err := svc.RetryMatching(ctx, ana, kycd.DeliverySelector{State: kycd.DeliveryDead, Sink: "crm", DeliveryMatch: kycd.DeliveryMatch{Error: "503"}})
	if err != nil || res != (kycd.BulkChange{Matched: 2, Changed: 2}) {
		t.Fatalf("retry of crm's 503s = %+v, %v; want 2 matched, 2 retried", res, err)
	}
	if dead, _ := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryDead}}); len(dead) != 1 || !strings.Contains(dead[0].LastError, "400") {
		t.Fatalf("dead after the retry = %+v, want only the 400", dead)
	}
	res, err = svc.DropMatching(ctx, ana, kycd.DeliverySelector{DeliveryMatch: kycd.DeliveryMatch{SubjectID: o.U2}})
	// u2's: s2's crm (pending again), s3's crm (dead), their two erp (pending).
	if err != nil || res != (kycd.BulkChange{Matched: 4, Changed: 4}) {
		t.Fatalf("drop of u2's = %+v, %v; want 4 matched, 4 dropped", res, err)
	}
	res, err = svc.RetryMatching(ctx, ana, kycd.DeliverySelector{DeliveryMatch: kycd.DeliveryMatch{SubjectID: o.U2}})
	if err != nil || res != (kycd.BulkChange{Matched: 4, Changed: 0}) {
		t.Fatalf("retry of u2's dropped deliveries = %+v, %v; want 4 matched, none retried", res, err)
	}
	if left, _ := s.Deliveries(ctx, kycd.DeliveryQuery{States: []string{kycd.DeliveryPending}}); len(left) != 2 {
		t.Fatalf("pending after the drop = %d, want s1's two", len(left))
	}
	page, err := svc.Audit(ctx, kycd.AuditFilter{Target: app.FilterTarget})
	if err != nil || len(page.Items) != 5 {
		t.Fatalf("audit of the bulk changes = %+v, %v; want 5 entries (2 refused, 3 done)", page, err)
	}
	drop := page.Items[1] // newest first: the retry, then the drop
	if drop.Action != kycd.AuditDeliveryDrop || drop.Outcome != kycd.AuditOK || !strings.Contains(drop.Detail, "matched 4, changed 4") || !strings.Contains(drop.Detail, o.U2) {
		t.Fatalf("audit entry of the drop = %+v", drop)
	}
}

// RecordReview records a REVIEW of the session id, dated long ago (so it
// is stalled now), notified to no sink.
func RecordReview(t *testing.T, s kycd.Store, id string) {
	t.Helper()
	if _, err := ingestWith(newPipeline(t, s), sessionEvent(id, kycd.StatusReview, 0)); err != nil {
		t.Fatal(err)
	}
}
