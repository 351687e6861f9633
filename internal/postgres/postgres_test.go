package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/storetest"
)

func TestConformance(t *testing.T) {
	open := func(t *testing.T, u string) kycd.Store {
		s, err := postgres.Open(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if err := s.MigrateAlone(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	storetest.Run(t, func(t *testing.T) kycd.Store { return open(t, postgrestest.URL(t)) }, func(t *testing.T) (kycd.Store, kycd.Store) {
		u := postgrestest.URL(t)
		return open(t, u), open(t, u)
	})
}

// Replicas starting together migrate one at a time and all succeed.
func TestConcurrentMigrations(t *testing.T) {
	u := postgrestest.URL(t)
	storetest.MigrateConcurrently(t, 4, func() (storetest.Migrator, error) { return postgres.Open(context.Background(), u) })
}

// Two replicas claiming at the same moment never get the same delivery.
func TestReplicasNeverClaimTheSameDelivery(t *testing.T) {
	u := postgrestest.URL(t)
	a, b := postgrestest.Open(t, u), postgrestest.Open(t, u)
	ctx := context.Background()
	var entries []*kycd.LogEntry
	for range 40 {
		entries = append(entries, sessionEntry(newID(), newID(), kycd.StatusVerified, 0))
	}
	appendLog(t, a, entries...)
	project(t, a, kycd.PlanOptions{Sinks: kycd.Routes("log")}, entries...)
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for _, r := range []struct {
		name  string
		store kycd.Store
	}{{"a", a}, {"b", b}} {
		wg.Go(func() {
			for {
				got, err := r.store.ClaimDeliveries(ctx, r.name, []string{"log"}, time.Now(), time.Minute, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					if other, ok := seen[d.ID]; ok {
						t.Errorf("delivery %s claimed by %s and %s", d.ID, other, r.name)
					}
					seen[d.ID] = r.name
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Fatalf("%d deliveries claimed, want 40", len(seen))
	}
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func TestBadURLNamesNoPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://user:s3cret@127.0.0.1:1/db?connect_timeout=1")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if got := err.Error(); strings.Contains(got, "s3cret") {
		t.Fatalf("error %q shows the password", got)
	}
}

// reads is the application layer over s, as the API and the CLI read s.
func reads(s kycd.Store) *app.Service { return &app.Service{Store: s} }

// statsSince is the stats of a window that began at since.
func statsSince(s kycd.Store, since time.Time, limit int) (*kycd.Stats, error) {
	a := &app.Service{Store: s, Now: func() time.Time { return since.Add(time.Hour) }}
	return a.Stats(context.Background(), time.Hour, limit)
}
