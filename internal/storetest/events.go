package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// testEventsCursorAfterRebuild: a page of events in hand goes on with the
// events that remain when the row its cursor names is gone, as while kycd
// rebuild re-projects the log: a rebuild removes the events it projects
// again (those whose bodies are kept) and keeps those whose bodies
// retention purged.
func testEventsCursorAfterRebuild(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	in := pipeline(t, s)
	now := time.Now().UTC()
	var entries []*kycd.LogEntry
	var ids []string
	for i := range 7 {
		id := uuid.NewString()
		b := ralioBody(id, "kyc_session_verified", uuid.NewString(), uuid.NewString(), base.Add(time.Duration(i)*time.Minute), "")
		// The first five are old enough for retention, the last two not.
		received := now.Add(-2 * time.Hour).Add(time.Duration(i) * time.Second)
		if i >= 5 {
			received = now.Add(time.Duration(i) * time.Second)
		}
		entries = append(entries, &kycd.LogEntry{EventID: id, ReceivedAt: received, Body: b, BodyHash: kycd.BodyHash(b)})
		ids = append(ids, id)
	}
	if err := s.AppendLog(ctx, entries); err != nil {
		t.Fatal(err)
	}
	drain(t, in)
	if p, err := purge(ctx, s, now, time.Hour); err != nil || p.EventBodies != 5 {
		t.Fatalf("purge = %+v, %v; want the five old bodies", p, err)
	}

	first, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Events) != 2 || first.Events[0].ID != ids[6] || first.Events[1].ID != ids[5] || first.NextCursor == "" {
		t.Fatalf("first page = %+v, want the last two received and a cursor", first)
	}
	// The rebuild's first step: the two events with bodies are gone, the
	// cursor's among them, until they are projected again.
	if _, err := ingest.ResetProjection(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EventSeq(ctx, ids[5]); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("the cursor's event after the reset: %v, want it gone", err)
	}
	var rest []string
	for cursor := first.NextCursor; cursor != ""; {
		p, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			rest = append(rest, e.ID)
		}
		cursor = p.NextCursor
	}
	want := slices.Clone(ids[:5])
	slices.Reverse(want)
	if !slices.Equal(rest, want) {
		t.Fatalf("the pages after a cursor whose event is gone = %v, want the five that remain, %v", rest, want)
	}

	// Once projected again, the cursor goes on below its event again.
	drain(t, in)
	again, err := reads(s).Events(ctx, kycd.EventFilter{Limit: 10, Cursor: first.NextCursor})
	if err != nil || len(again.Events) != 5 || again.Events[0].ID != ids[4] {
		t.Fatalf("the page after the cursor once rebuilt = %+v, %v; want the five older events", again, err)
	}
}
