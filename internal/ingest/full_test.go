package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// roomStore refuses as unavailable, as a file system with little space
// left does, any projection of more than room events.
type roomStore struct {
	kycd.Store
	room int
}

func (s roomStore) BeginProjection(ctx context.Context) (kycd.ProjectionTx, error) {
	tx, err := s.Store.BeginProjection(ctx)
	return roomTx{tx, s.room}, err
}

type roomTx struct {
	kycd.ProjectionTx
	room int
}

func (tx roomTx) Apply(ctx context.Context, p *kycd.Plan) error {
	if len(p.Events) > tx.room {
		return kycd.Errorf(kycd.EUNAVAILABLE, "database or disk is full")
	}
	return tx.ProjectionTx.Apply(ctx, p)
}

// A batch the store refuses as unavailable is tried again with half as
// many entries, and the next stay below the size refused: a disk with room
// for 3 events per transaction takes a backlog of 40 after a few refusals
// (16, 8, 4), where the full batch, tried again whole, would be refused for
// ever and the projection wedged, and doubling back after each success
// would be refused every other batch (each costing serve a second).
func TestProjectionShrinksItsBatchWhenTheStoreRefusesIt(t *testing.T) {
	base := sqlitetest.Open(t)
	in, err := ingest.New(context.Background(), roomStore{base, 3}, ingest.Options{Sinks: kycd.Routes("log"), ProjectBatch: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	body := readExample(t, "a-kyc_session_failed.json")
	var ids []string
	for i := range 40 {
		id := fmt.Sprintf("11111111-1111-4111-8111-%012d", i)
		b := bytes.Replace(body, []byte("550e8400-e29b-41d4-a716-446655440000"), []byte(id), 1)
		b = bytes.Replace(b, []byte("550e8400-e29b-41d4-a716-446655440002"), []byte(fmt.Sprintf("55555555-5555-4555-8555-%012d", i)), 1)
		if _, err := in.Receive(context.Background(), b); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	projected, failures := 0, 0
	for projected < len(ids) && failures < 20 {
		n, err := in.Drain(context.Background())
		projected += n
		if err != nil {
			if kycd.ErrorCode(err) != kycd.EUNAVAILABLE {
				t.Fatalf("Drain: %v", err)
			}
			failures++
		}
	}
	if projected != len(ids) || failures > 4 {
		t.Fatalf("projected %d of %d events after %d refused batches; want all, after 3 or 4 refusals", projected, len(ids), failures)
	}
	for _, id := range ids {
		if _, err := base.Event(context.Background(), id); err != nil {
			t.Errorf("event %s: %v", id, err)
		}
	}
}
