package storetest

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// testSignatureHold: the hold keeps at most its caps of bodies refused for
// their signature, the oldest going first, with the signature each came
// with; other quarantined bodies are neither counted nor dropped; its
// retention removes only held bodies.
func testSignatureHold(t *testing.T, s kycd.Store) {
	ctx := context.Background()
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	other := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base.Add(-time.Hour), Reason: kycd.QuarantineInvalid,
		Problem: []byte(`{"detail":"x"}`), Body: bytes.Repeat([]byte("i"), 500)}
	if err := s.AddQuarantine(ctx, other); err != nil {
		t.Fatal(err)
	}
	const letters = "abcdefgh"
	held := func(i int, size int, caps kycd.SignatureHold) (string, int) {
		t.Helper()
		q := &kycd.Quarantined{ID: uuid.NewString(), ReceivedAt: base.Add(time.Duration(i) * time.Second), Reason: kycd.QuarantineSignature,
			Problem: []byte(`{"status":401}`), Body: bytes.Repeat([]byte(letters[i:i+1]), size), Signature: "sig-" + letters[i:i+1]}
		dropped, err := s.HoldQuarantine(ctx, q, caps)
		if err != nil {
			t.Fatal(err)
		}
		return q.ID, dropped
	}
	kept := func() []*kycd.Quarantined {
		t.Helper()
		all, err := s.Quarantine(ctx, true, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []*kycd.Quarantined
		sawOther := false
		for _, q := range all {
			switch q.Reason {
			case kycd.QuarantineSignature:
				out = append(out, q)
			case kycd.QuarantineInvalid:
				sawOther = true
			}
		}
		if !sawOther {
			t.Fatal("the hold's caps dropped a body quarantined for another reason")
		}
		return out
	}

	count := kycd.SignatureHold{MaxCount: 3, MaxBytes: 1 << 20}
	var ids []string
	for i := range 5 {
		id, dropped := held(i, 10, count)
		ids = append(ids, id)
		if want := max(0, min(1, i-2)); dropped != want {
			t.Fatalf("hold %d dropped %d, want %d", i, dropped, want)
		}
	}
	got := kept()
	if len(got) != 3 || got[0].ID != ids[4] || got[1].ID != ids[3] || got[2].ID != ids[2] {
		t.Fatalf("held after the count cap = %v, want the newest 3 of %v", idsOf(got), ids)
	}
	q, err := s.QuarantineItem(ctx, ids[4])
	if err != nil || q.Signature != "sig-e" || q.Reason != kycd.QuarantineSignature {
		t.Fatalf("held item = %+v, %v; want its signature sig-e kept", q, err)
	}

	// The byte cap: 3 bodies of 100 bytes under a cap of 250 keep 2.
	sized := kycd.SignatureHold{MaxCount: 100, MaxBytes: 250}
	var newest []string
	for i := 5; i < 8; i++ {
		id, _ := held(i, 100, sized)
		newest = append(newest, id)
	}
	if got := kept(); len(got) != 2 || got[0].ID != newest[2] || got[1].ID != newest[1] {
		t.Fatalf("held after the byte cap = %v, want the newest 2 of %v", idsOf(got), newest)
	}

	// The hold's retention: only held bodies before the bound go.
	svc := service(s, base.Add(6500*time.Millisecond))
	n, err := svc.PurgeHold(ctx, 0)
	if err != nil || n != 1 {
		t.Fatalf("PurgeHold = %d, %v; want 1 (the body held at +6s)", n, err)
	}
	if got := kept(); len(got) != 1 || got[0].ID != newest[2] {
		t.Fatalf("held after the retention = %v, want %s", idsOf(got), newest[2])
	}
}

func idsOf(qs []*kycd.Quarantined) []string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.ID
	}
	return out
}
