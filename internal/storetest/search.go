package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// testSearchByID: a search finds each kind of record by its whole id, in
// any spelling, and by a prefix of 8 or more digits, and nothing outside
// the prefix; it lists at most 10 of a kind and says which kinds had more;
// it refuses a prefix too short to be an answer, and anything not an id.
func testSearchByID(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	// Ids side by side in byte order: the prefix a9a9a9a9 ends in 9, whose
	// next byte is ':', below every letter.
	id := func(prefix string, n int) string { return fmt.Sprintf("%s-0000-4000-8000-%012d", prefix, n) }
	user := kycd.SubjectRef{Type: kycd.SubjectUser, ID: id("a9a9a9a9", 1)}
	ev := sessionEvent(id("a9a9a9a9", 2), kycd.StatusRejected, 0)
	ev.ID, ev.Subject = id("a9a9a9a9", 3), user
	record(t, s, ev)
	beside := sessionEvent(id("a9a9a9aa", 4), kycd.StatusRejected, 0) // one past the prefix
	beside.Subject = kycd.SubjectRef{Type: kycd.SubjectUser, ID: id("a9a9a9a8", 5)}
	record(t, s, beside)
	// A business known by its level only, not by a session.
	business := kycd.SubjectRef{Type: kycd.SubjectBusiness, ID: id("b0b0b0b0", 6)}
	record(t, s, levelEvent(business, "REGULAR", 0))
	q := &kycd.Quarantined{ID: id("a9a9a9a9", 7), ReceivedAt: time.Now().UTC(), Reason: kycd.QuarantineInvalid,
		Problem: []byte(`{"detail":"x"}`), Body: []byte(`{"email":"ana@example.com"}`)}
	if err := s.AddQuarantine(ctx, q); err != nil {
		t.Fatal(err)
	}
	// Eleven sessions under one prefix: one more than a search lists.
	for n := range 11 {
		record(t, s, sessionEvent(id("ffffffff", n), kycd.StatusReview, 0))
	}
	notification := kycd.NotificationID(ev.ID)
	deliveries, err := s.Deliveries(ctx, kycd.DeliveryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var delivery *kycd.Delivery
	for _, d := range deliveries {
		if d.NotificationID == notification {
			delivery = d
		}
	}
	if delivery == nil {
		t.Fatalf("no delivery of the rejection's notification among %d", len(deliveries))
	}

	search := func(q string) ([]string, []string) {
		t.Helper()
		res, err := reads(s).Search(ctx, q)
		if err != nil {
			t.Fatalf("search %q: %v", q, err)
		}
		var got []string
		for _, f := range res.Items {
			got = append(got, f.Kind+" "+f.ID)
		}
		return got, res.Truncated
	}
	prefixed := []string{
		"session " + ev.SessionID, "subject " + user.ID, "event " + ev.ID, "quarantine " + q.ID,
	}
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"a9a9a9a9", prefixed},
		{"A9A9A9A9-0000", prefixed},
		{"a9a9a9a90000", prefixed}, // the dashes left out
		{strings.ToUpper(ev.SessionID), []string{"session " + ev.SessionID}},
		{"  " + user.ID + " ", []string{"subject " + user.ID}},
		{"{" + ev.ID + "}", []string{"event " + ev.ID}},
		{q.ID, []string{"quarantine " + q.ID}},
		{business.ID, []string{"subject " + business.ID}},
		{notification, []string{"notification " + notification}},
		{delivery.ID, []string{"delivery " + delivery.ID}},
		{uuid.NewString(), nil},
	} {
		if got, _ := search(tc.q); !slices.Equal(got, tc.want) {
			t.Errorf("search %q = %v, want %v", tc.q, got, tc.want)
		}
	}
	// Prefixes of 8 of notifications and deliveries find them too (a
	// delivery's id begins with its time: its neighbours may come along).
	for _, want := range []string{"notification " + notification, "delivery " + delivery.ID} {
		full := strings.Fields(want)[1]
		if got, _ := search(full[:8]); !slices.Contains(got, want) {
			t.Errorf("search %q = %v, lacking %s", full[:8], got, want)
		}
	}

	// What a hit says: its type and state, never a body; where it opens.
	res, err := reads(s).Search(ctx, "a9a9a9a9")
	if err != nil {
		t.Fatal(err)
	}
	hits := map[string]kycd.Found{}
	for _, f := range res.Items {
		hits[f.Kind] = f
	}
	if f := hits[kycd.FoundSession]; f.Status != string(kycd.StatusRejected) || f.Subject != user || f.Href != "#/sessions/"+ev.SessionID || f.API != "/api/v1/sessions/"+ev.SessionID {
		t.Errorf("session hit = %+v", f)
	}
	if f := hits[kycd.FoundSubject]; f.Type != kycd.SubjectUser || f.Href != "#/subjects/"+user.ID+"?type=user" || f.API != "/api/v1/subjects/"+user.ID+"?type=user" {
		t.Errorf("subject hit = %+v", f)
	}
	if f := hits[kycd.FoundEvent]; f.Type != "kyc_session_failed" || f.SessionID != ev.SessionID || f.Href != "#/sessions/"+ev.SessionID+"?event="+ev.ID || f.API != "/api/v1/events/"+ev.ID+"/summary" {
		t.Errorf("event hit = %+v", f)
	}
	if f := hits[kycd.FoundQuarantined]; f.Status != kycd.QuarantineInvalid || f.Href != "#/quarantine/"+q.ID || f.API != "/api/v1/quarantine/"+q.ID+"/summary" || strings.Contains(fmt.Sprint(f), "ana@") {
		t.Errorf("quarantine hit = %+v", f)
	}
	res, err = reads(s).Search(ctx, delivery.ID)
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("search of the delivery = %+v, %v", res, err)
	}
	if f := res.Items[0]; f.Status != kycd.DeliveryPending || f.Sink != "log" || f.Type != kycd.NotifySessionRejected || f.Href != "#/deliveries/"+delivery.ID {
		t.Errorf("delivery hit = %+v", f)
	}
	res, err = reads(s).Search(ctx, notification)
	if err != nil || len(res.Items) != 1 {
		t.Fatalf("search of the notification = %+v, %v", res, err)
	}
	if f := res.Items[0]; f.Type != kycd.NotifySessionRejected || f.SessionID != ev.SessionID || f.Href != "#/sessions/"+ev.SessionID+"?notification="+notification {
		t.Errorf("notification hit = %+v", f)
	}

	// Ten of a kind, and the kind named as cut.
	got, truncated := search("ffffffff")
	if len(got) != 10 || !slices.Equal(truncated, []string{kycd.FoundSession}) || got[0] != "session "+id("ffffffff", 0) {
		t.Errorf("search ffffffff = %v, truncated %v; want the first 10 of its 11 sessions, sessions named as cut", got, truncated)
	}
	if _, truncated := search("a9a9a9a9"); len(truncated) != 0 {
		t.Errorf("search a9a9a9a9 says %v were cut", truncated)
	}

	for _, bad := range []string{"", "a9a9a9a", "ana.garcia@example.com", "a9a9-a9a9", "a9a9a9a9-00000", "a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a"} {
		if _, err := reads(s).Search(ctx, bad); kycd.ErrorCode(err) != kycd.EINVALID || !strings.Contains(kycd.ErrorMessage(err), "8") {
			t.Errorf("search %q = %v, want EINVALID saying it takes 8 digits", bad, err)
		}
	}
}
