package ingest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

// Replay is offered only where it can succeed: a conflict whose original
// is stored and a body that is still invalid cannot; a body valid now can,
// and so can one whose event arrived since with the same content (its
// replay is a duplicate that settles the item).
func TestReplayChecksOfferOnlyWhatCanSucceed(t *testing.T) {
	in := newIngester(t)
	ctx := context.Background()
	seed := readExample(t, "a-kyc_session_failed.json")
	if _, err := in.receive(t, seed); err != nil {
		t.Fatal(err)
	}
	changed := bytes.Replace(seed, []byte("EXPIRED_DOCUMENT"), []byte("BLURRY_IMAGE"), 1)
	conflict, err := in.Receive(ctx, changed)
	if kycd.ErrorCode(err) != kycd.ECONFLICT || conflict.QuarantineID == "" {
		t.Fatalf("conflict = %+v, %v", conflict, err)
	}
	invalid, err := in.Receive(ctx, []byte(`{"id":"`+uuid.NewString()+`","event":"kyc_session_failed","timestamp":"yesterday"}`))
	if kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("invalid = %+v, %v", invalid, err)
	}
	add := func(body []byte) string {
		t.Helper()
		q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: time.Now(), Reason: kycd.QuarantineInvalid, Problem: []byte(`{}`), Body: body}
		if err := in.Store.AddQuarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
		return q.ID
	}
	// Valid now, as after a fix of kycd: a new event, and a copy of the
	// stored seed re-indented (a duplicate).
	fixed := add([]byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_verified","timestamp":"2026-01-02T03:04:05Z","data":{"sessionId":"` + uuid.NewString() + `","userId":"` + uuid.NewString() + `"}}`))
	var indented bytes.Buffer
	indented.WriteString(" ")
	indented.Write(seed)
	same := add(indented.Bytes())
	discarded := add([]byte(`{"id":"` + uuid.NewString() + `","event":"kyc_session_verified","timestamp":"2026-01-02T03:04:05Z","data":{"sessionId":"` + uuid.NewString() + `","userId":"` + uuid.NewString() + `"}}`))
	if _, err := (&app.Service{Store: in.Store}).DiscardQuarantine(ctx, app.Actor{Name: "api:admin"}, discarded); err != nil {
		t.Fatal(err)
	}

	var items []*kycd.Quarantined
	for _, id := range []string{conflict.QuarantineID, invalid.QuarantineID, fixed, same, discarded} {
		q, err := in.Store.QuarantineItem(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, q)
	}
	checks, err := in.ReplayChecks(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		replayable bool
		why        string
	}{
		{false, "is stored with another body"},
		{false, "still not a valid Ralio event (timestamp must be"},
		{true, ""},
		{true, ""},
		{false, "discarded"},
	} {
		if checks[i].Replayable != want.replayable || !strings.Contains(checks[i].Why, want.why) || (want.replayable && checks[i].Why != "") {
			t.Errorf("item %d (%s): check = %+v, want replayable %v and why containing %q", i, items[i].Reason, checks[i], want.replayable, want.why)
		}
	}
	// What the checks promised is what a replay does.
	for i, q := range items {
		_, err := in.Replay(ctx, q.ID)
		if (err == nil) != checks[i].Replayable {
			t.Errorf("item %d: replay = %v, but the check said %+v", i, err, checks[i])
		}
	}
	if _, err := in.Replay(ctx, discarded); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Errorf("replay of a discarded body = %v, want ECONFLICT", err)
	}
}
