package emulator_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd/ralio"
	"github.com/kycd/kycd/ralio/emulator"
)

func TestDuplicates(t *testing.T) {
	t.Parallel()
	for _, p := range []float64{0, 1} {
		recv := newReceiver(t, nil)
		f := newFixture(t, recv.URL, func(o *emulator.Options) { o.Duplicates = p })
		var ids []string
		for range 10 {
			ids = append(ids, f.failOutcome(t))
		}
		f.deliver(t) // first sends
		f.deliver(t) // duplicates, due at once without --reorder
		per := map[string]int{}
		for _, b := range recv.received() {
			ev, err := ralio.Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			per[ev.ID]++
		}
		for _, id := range ids {
			want := 1 + int(p)
			if per[id] != want {
				t.Errorf("duplicates %v: event %s received %d times, want %d", p, id, per[id], want)
			}
			d := f.delivery(t, id)
			if d.State != "delivered" || len(d.Attempts) != want || d.Attempts[want-1].Duplicate != (p == 1) || d.Attempts[0].Duplicate {
				t.Errorf("duplicates %v: delivery %+v", p, d)
			}
		}
	}

	// About P of the webhooks are sent twice, and the choice follows the seed.
	dupCount := func(seed uint64) (int, []bool) {
		recv := newReceiver(t, nil)
		f := newFixture(t, recv.URL, func(o *emulator.Options) { o.Duplicates = 0.3; o.Seed = seed })
		var twice []bool
		for range 200 {
			id := f.failOutcome(t)
			f.deliver(t)
			f.deliver(t)
			twice = append(twice, len(f.delivery(t, id).Attempts) == 2)
		}
		n := 0
		for _, b := range twice {
			if b {
				n++
			}
		}
		return n, twice
	}
	n, a := dupCount(7)
	if n < 35 || n > 85 {
		t.Errorf("duplicates 0.3: %d of 200 sent twice, want about 60", n)
	}
	if _, b := dupCount(7); !slices.Equal(a, b) {
		t.Errorf("the same seed chose different webhooks to send twice")
	}
}

func TestReorder(t *testing.T) {
	t.Parallel()
	recv := newReceiver(t, nil)
	const hold = time.Hour
	f := newFixture(t, recv.URL, func(o *emulator.Options) { o.Reorder = hold; o.Seed = 3 })
	s := f.newSession(t, userID)
	var ids []string
	for i := range 20 {
		f.clock.Add(time.Second)
		ev := []string{"kyc_session_failed", "kyc_session_manual_review", "kyc_session_verified"}[i%3]
		ids = append(ids, f.outcome(t, s.ID, map[string]any{"event": ev}))
	}
	emitted := f.clock.Now()
	for f.clock.Now().Before(emitted.Add(hold)) {
		f.deliver(t)
		f.clock.Add(10 * time.Second)
	}
	f.deliver(t)

	// Every webhook arrives within the holding time, in another order than
	// it was emitted.
	var arrival []time.Time
	for i, id := range ids {
		d := f.delivery(t, id)
		if d.State != "delivered" || len(d.Attempts) != 1 {
			t.Fatalf("event %d: %+v, want delivered once", i, d)
		}
		emittedAt := t0.Add(time.Duration(i+1) * time.Second)
		if at := d.Attempts[0].At; at.Before(emittedAt) || !at.Before(emittedAt.Add(hold+10*time.Second)) {
			t.Errorf("event %d emitted at %v sent at %v, want within %v", i, emittedAt, at, hold)
		}
		arrival = append(arrival, d.Attempts[0].At)
	}
	if slices.IsSortedFunc(arrival, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("20 webhooks held up to %v arrived in the order they were emitted", hold)
	}
	// The receiver saw them out of order too, yet timestamps tell the truth.
	var stamps []time.Time
	for _, b := range recv.received() {
		ev, _ := ralio.Parse(b)
		stamps = append(stamps, ev.Timestamp)
	}
	if slices.IsSortedFunc(stamps, func(a, b time.Time) int { return a.Compare(b) }) {
		t.Errorf("the receiver got the webhooks in timestamp order")
	}
}

// normalised is what a receiver acts on: the event without the raw data,
// which differs between generations by design.
func normalised(ev ralio.Event) ralio.Event {
	ev.Data = nil
	return ev
}

func withoutCategories(ev ralio.Event) ralio.Event {
	ev.Checks = slices.Clone(ev.Checks)
	for i := range ev.Checks {
		ev.Checks[i].Reasons = slices.Clone(ev.Checks[i].Reasons)
		for j := range ev.Checks[i].Reasons {
			ev.Checks[i].Reasons[j].Category = ""
		}
	}
	return ev
}

// TestGenerations drives the same history in each generation: every body
// parses to the same event, with each generation's envelope.
func TestGenerations(t *testing.T) {
	t.Parallel()
	business := uuid.NewString()
	party := uuid.NewString()
	sessionID := uuid.NewString()
	// drive returns the bodies in timestamp order, and the session the
	// invitation opened (its id and URL are new in each run).
	type run struct {
		bodies            []json.RawMessage
		invited, inviteAt string
	}
	drive := func(g emulator.Generation) run {
		recv := newReceiver(t, nil)
		f := newFixture(t, recv.URL, func(o *emulator.Options) { o.Generation = g })
		// The same ids in each run, so events compare field by field.
		f.outcome(t, sessionID, map[string]any{"event": "kyc_session_failed", "userId": userID, "checks": []any{
			map[string]any{"type": "document-verification", "state": "Refused", "data": map[string]any{"provider": "MOCK"}, "reasons": []any{
				map[string]any{"type": "document", "code": "KYC.DOC.DETERIORATED", "message": "damaged", "category": "DOC"},
			}},
			map[string]any{"type": "liveness", "state": "Validated"},
		}})
		f.outcome(t, sessionID, map[string]any{"event": "kyc_session_manual_review", "checks": []any{}})
		f.outcome(t, sessionID, map[string]any{"event": "kyc_session_verified"})
		f.outcome(t, sessionID, map[string]any{"event": "kyc_session_expired"})
		f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/kyc-level", `{"level":"LIGHT"}`, http.StatusOK, nil)
		f.must(t, http.MethodPost, "/emulator/v1/users/"+userID+"/expiration-warning", `{"expirationDate":"2026-04-01"}`, http.StatusOK, nil)
		f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/kyb-level", `{"level":"regular"}`, http.StatusOK, nil)
		var inv struct {
			SessionID string `json:"sessionId"`
			HostedURL string `json:"hostedUrl"`
		}
		f.must(t, http.MethodPost, "/emulator/v1/business-users/"+business+"/related-parties", map[string]any{"relatedPartyId": party}, http.StatusOK, &inv)
		f.outcome(t, inv.SessionID, map[string]any{"event": "kyc_session_failed"})
		f.must(t, http.MethodPost, "/emulator/v1/related-parties/"+party+"/kyc-level", `{"level":"REGULAR"}`, http.StatusOK, nil)
		f.must(t, http.MethodPost, "/emulator/v1/related-parties/"+party+"/expiration-warning", `{"daysRemaining":3}`, http.StatusOK, nil)
		f.deliver(t)
		var out []json.RawMessage
		for _, b := range recv.received() {
			out = append(out, b)
		}
		if len(out) != 11 {
			t.Fatalf("generation %s: %d webhooks, want 11", g, len(out))
		}
		// Concurrent sends arrive in any order: sort by timestamp.
		slices.SortFunc(out, func(a, b json.RawMessage) int {
			ea, _ := ralio.Parse(a)
			eb, _ := ralio.Parse(b)
			return ea.Timestamp.Compare(eb.Timestamp)
		})
		return run{out, inv.SessionID, inv.HostedURL}
	}
	bodies := map[emulator.Generation]run{}
	for _, g := range []emulator.Generation{emulator.GenerationA, emulator.GenerationB, emulator.GenerationC} {
		bodies[g] = drive(g)
	}

	for i := range bodies[emulator.GenerationA].bodies {
		var events [3]ralio.Event
		for j, g := range []emulator.Generation{emulator.GenerationA, emulator.GenerationB, emulator.GenerationC} {
			body := bodies[g].bodies[i]
			ev, err := ralio.Parse(body)
			if err != nil {
				t.Fatalf("generation %s: %v in %s", g, err, body)
			}
			if ev.SessionID == bodies[g].invited {
				ev.SessionID = "the invited session"
			}
			if ev.Invitation != nil && ev.Invitation.VerificationURL == bodies[g].inviteAt {
				ev.Invitation.VerificationURL = "its hosted URL"
			}
			events[j] = normalised(ev)
			checkEnvelope(t, g, body)
		}
		a, b, c := events[0], events[1], events[2]
		// Event ids are random per run; everything else is the same.
		a.ID, b.ID, c.ID = "", "", ""
		if !reflect.DeepEqual(b, c) {
			t.Errorf("event %d: generation B parses to %+v\nC to %+v", i, b, c)
		}
		if !reflect.DeepEqual(a, withoutCategories(b)) {
			t.Errorf("event %d: generation A parses to %+v\nB to %+v", i, a, b)
		}
		if b.Type == ralio.TypeSessionFailed && b.Subject.Type == ralio.SubjectUser && b.Checks[0].Reasons[0].Category != "DOC" {
			t.Errorf("generation B lost the reason's category: %+v", b.Checks)
		}
	}
}

// checkEnvelope checks the fields that tell generations apart.
func checkEnvelope(t *testing.T, g emulator.Generation, body []byte) {
	t.Helper()
	var env struct {
		ID, Event, EventID, EventType *string
		Data                          map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatal(err)
	}
	c := g == emulator.GenerationC
	if (env.ID != nil) == c || (env.Event != nil) == c || (env.EventID != nil) != c || (env.EventType != nil) != c {
		t.Errorf("generation %s envelope: %s", g, body)
	}
	typ := ""
	if c {
		typ = *env.EventType
	} else {
		typ = *env.Event
	}
	_, hasEntity := env.Data["entityType"]
	subjectEvent := typ != ralio.TypeKYBStateUpdated && typ != ralio.TypeRelatedPartyInvited
	if subjectEvent && hasEntity != (g != emulator.GenerationA) {
		t.Errorf("generation %s: entityType present = %v in %s", g, hasEntity, body)
	}
	if typ == ralio.TypeKYCStateUpdated {
		_, snake := env.Data["kyc_id"]
		if snake != (g == emulator.GenerationA) {
			t.Errorf("generation %s kyc_state_updated: %s", g, body)
		}
	}
	if checks, ok := env.Data["checks"]; ok {
		var cs []struct {
			State json.RawMessage `json:"state"`
		}
		if err := json.Unmarshal(checks, &cs); err != nil {
			t.Fatalf("decode %s: %v", checks, err)
		}
		for _, ck := range cs {
			if isString := ck.State[0] == '"'; isString != (g == emulator.GenerationA) {
				t.Errorf("generation %s check state %s", g, ck.State)
			}
		}
	} else if g == emulator.GenerationA && typ != ralio.TypeKYCStateUpdated && typ != ralio.TypeKYBStateUpdated &&
		typ != ralio.TypeKYCExpirationWarning && typ != ralio.TypeRelatedPartyInvited {
		t.Errorf("generation A session event without checks: %s", body)
	}
}

func TestMixedGenerations(t *testing.T) {
	t.Parallel()
	run := func(seed uint64) []string {
		f := newFixture(t, "http://127.0.0.1:1/webhooks/ralio", func(o *emulator.Options) {
			o.Generation = emulator.GenerationMixed
			o.Seed = seed
		})
		var gens []string
		for range 30 {
			gens = append(gens, f.delivery(t, f.failOutcome(t)).Generation)
		}
		return gens
	}
	gens := run(11)
	for _, g := range []string{"A", "B", "C"} {
		if !slices.Contains(gens, g) {
			t.Errorf("30 mixed events %v include no generation %s", gens, g)
		}
	}
	if again := run(11); !slices.Equal(gens, again) {
		t.Errorf("seed 11 gave %v, then %v", gens, again)
	}
}
