package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// Tests of the event log and of the projection transaction driven as the
// projector drives it (append, claim, read the current rows, plan with
// kycd.PlanBatch, apply, commit), without package ingest in between.

// driver appends events to a store's log and projects them, keeping the
// decoded events by seq as the projector's appender hands them over.
type driver struct {
	t      *testing.T
	s      kycd.Store
	events map[int64]*kycd.Event
	opt    kycd.PlanOptions
}

func newDriver(t *testing.T, s kycd.Store, sinks ...string) *driver {
	return &driver{t: t, s: s, events: map[int64]*kycd.Event{}, opt: kycd.PlanOptions{Sinks: kycd.Routes(sinks...)}}
}

// append commits evs to the log as one batch.
func (d *driver) append(evs ...*kycd.Event) []*kycd.LogEntry {
	d.t.Helper()
	var entries []*kycd.LogEntry
	for _, ev := range evs {
		ev.ReceivedAt = ev.ReceivedAt.Truncate(time.Microsecond) // what every store keeps
		entries = append(entries, &kycd.LogEntry{EventID: ev.ID, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash, Event: ev})
	}
	if err := d.s.AppendLog(context.Background(), entries); err != nil {
		d.t.Fatal(err)
	}
	for _, e := range entries {
		d.events[e.Seq] = e.Event
	}
	return entries
}

// project projects one batch of up to limit entries and returns its plan.
func (d *driver) project(limit int) *kycd.Plan {
	d.t.Helper()
	ctx := context.Background()
	tx, err := d.s.BeginProjection(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	entries, err := tx.ClaimLog(ctx, limit, 1<<30)
	if err != nil {
		d.t.Fatal(err)
	}
	for _, e := range entries {
		if e.Body == nil {
			d.t.Fatalf("claimed entry %d without its body", e.Seq)
		}
		if e.Event = d.events[e.Seq]; e.Event == nil {
			d.t.Fatalf("claimed entry %d (%s) the test did not append", e.Seq, e.EventID)
		}
	}
	cur, err := tx.Current(ctx, kycd.Keys(entries))
	if err != nil {
		d.t.Fatal(err)
	}
	p := kycd.PlanBatch(entries, cur, d.opt)
	if err := tx.Apply(ctx, p); err != nil {
		d.t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		d.t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		d.t.Fatalf("Rollback after Commit = %v, want nil", err)
	}
	return p
}

// current reads the projection rows keys name, in a projection rolled back.
func (d *driver) current(keys kycd.PlanKeys) *kycd.Projection {
	d.t.Helper()
	ctx := context.Background()
	tx, err := d.s.BeginProjection(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	cur, err := tx.Current(ctx, keys)
	if err != nil {
		d.t.Fatal(err)
	}
	return cur
}

// unhandledEvent is an event of a type kycd does not project.
func unhandledEvent() *kycd.Event {
	id := uuid.NewString()
	return &kycd.Event{ID: id, Type: "viban_created", Timestamp: base, ReceivedAt: time.Now().UTC(),
		Body: []byte(`{"id":"` + id + `","event":"viban_created"}`), BodyHash: "hash-" + id}
}

func seqsOf(entries []*kycd.LogEntry) []int64 {
	var out []int64
	for _, e := range entries {
		out = append(out, e.Seq)
	}
	return out
}

// testClaimLog: claims in one transaction take the next entries; a
// rolled back claim leaves them to the next projection.
func testClaimLog(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, s)
	var all []int64
	for range 5 {
		all = append(all, seqsOf(d.append(unhandledEvent()))...)
	}
	claim := func(tx kycd.ProjectionTx, limit int) []int64 {
		t.Helper()
		entries, err := tx.ClaimLog(ctx, limit, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		return seqsOf(entries)
	}
	tx, err := s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if got := claim(tx, 2); !slices.Equal(got, all[:2]) {
		t.Fatalf("first claim = %v, want %v", got, all[:2])
	}
	if got := claim(tx, 2); !slices.Equal(got, all[2:4]) {
		t.Fatalf("second claim in one transaction = %v, want the next entries %v", got, all[2:4])
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	d.project(3)
	tx, err = s.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if got := claim(tx, 10); !slices.Equal(got, all[3:]) {
		t.Fatalf("claim after a projection of 3 = %v, want %v", got, all[3:])
	}
	if got, _ := s.UnprojectedLog(ctx, 1<<62, 10); len(got) != 2 {
		t.Fatalf("UnprojectedLog = %d entries, want 2", len(got))
	}
}

// testAppendLog: entries get increasing seqs in slice and commit order,
// one statement however big the batch; the log reads them back as
// appended, unprojected, without bodies unless asked.
func testAppendLog(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	if err := s.AppendLog(ctx, nil); err != nil {
		t.Fatalf("empty AppendLog = %v", err)
	}
	if head, err := s.LogHead(ctx); err != nil || head != 0 {
		t.Fatalf("LogHead of an empty log = %d, %v; want 0", head, err)
	}
	d := newDriver(t, s)
	all := d.append(unhandledEvent(), unhandledEvent(), unhandledEvent())
	all = append(all, d.append(unhandledEvent())...)
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("seqs %v, want increasing in slice and commit order", seqsOf(all))
		}
	}
	last := all[len(all)-1].Seq
	if head, err := s.LogHead(ctx); err != nil || head != last {
		t.Fatalf("LogHead = %d, %v; want %d", head, err, last)
	}
	for _, e := range all {
		if body, err := s.LogBody(ctx, e.Seq); err != nil || string(body) != string(e.Body) {
			t.Fatalf("LogBody(%d) = %s, %v; want %s", e.Seq, body, err, e.Body)
		}
	}
	if _, err := s.LogBody(ctx, last+100); kycd.ErrorCode(err) != kycd.ENOTFOUND {
		t.Fatalf("LogBody of an unknown seq = %v, want ENOTFOUND", err)
	}
	got, err := s.UnprojectedLog(ctx, all[2].Seq, 10)
	if err != nil || len(got) != 3 {
		t.Fatalf("UnprojectedLog(through the third) = %d entries, %v; want 3", len(got), err)
	}
	for i, e := range got {
		want := all[i]
		if e.Seq != want.Seq || e.EventID != want.EventID || e.BodyHash != want.BodyHash || !e.ReceivedAt.Equal(want.ReceivedAt) ||
			e.ReceivedAt.Location() != time.UTC || e.Body != nil || e.Event != nil {
			t.Fatalf("UnprojectedLog[%d] = %+v, want %+v without body, in UTC", i, e, want)
		}
	}
	if got, _ := s.UnprojectedLog(ctx, 1<<62, 1); len(got) != 1 || got[0].Seq != all[0].Seq {
		t.Fatalf("UnprojectedLog(limit 1) = %+v, want the oldest entry", got)
	}

	big := make([]*kycd.Event, 1000)
	for i := range big {
		big[i] = unhandledEvent()
	}
	entries := d.append(big...)
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("seqs of a big batch at %d: %d then %d, want increasing", i, entries[i-1].Seq, entries[i].Seq)
		}
	}
	for _, i := range []int{0, 499, 999} {
		if body, err := s.LogBody(ctx, entries[i].Seq); err != nil || string(body) != string(big[i].Body) {
			t.Fatalf("LogBody of big[%d] = %q, %v; want %q", i, body, err, big[i].Body)
		}
	}
	if entries[0].Seq <= last {
		t.Fatalf("second batch starts at %d, after %d", entries[0].Seq, last)
	}

	s.Close()
	if _, err := s.BeginProjection(ctx); kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
		t.Fatalf("BeginProjection on a closed store = %v, want EUNAVAILABLE", err)
	}
}

// testProjectionsTakeTurns: two processes on one store project one at a
// time: the second waits for the first to end and claims only what it left.
func testProjectionsTakeTurns(t *testing.T, a, b kycd.Store) {
	ctx := context.Background()
	d := newDriver(t, a)
	entries := d.append(unhandledEvent(), unhandledEvent())

	first, err := a.BeginProjection(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Rollback(ctx)
	claimed, err := first.ClaimLog(ctx, 1, 1<<30)
	if err != nil || len(claimed) != 1 {
		t.Fatalf("ClaimLog = %d, %v", len(claimed), err)
	}
	type begun struct {
		claimed []*kycd.LogEntry
		err     error
	}
	second := make(chan begun, 1)
	go func() {
		tx, err := b.BeginProjection(ctx)
		if err != nil {
			second <- begun{err: err}
			return
		}
		defer tx.Rollback(ctx)
		got, err := tx.ClaimLog(ctx, 10, 1<<30)
		second <- begun{got, err}
	}()
	select {
	case r := <-second:
		t.Fatalf("a second projection began while the first was open: claimed %v, %v", seqsOf(r.claimed), r.err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := first.Apply(ctx, &kycd.Plan{Projected: []int64{claimed[0].Seq}}); err != nil {
		t.Fatal(err)
	}
	if err := first.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-second
	if r.err != nil || len(r.claimed) != 1 || r.claimed[0].Seq != entries[1].Seq {
		t.Fatalf("second projection claimed %v, %v; want entry %d only", seqsOf(r.claimed), r.err, entries[1].Seq)
	}
}
