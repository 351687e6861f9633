package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/sqlite"
	"github.com/kycd/kycd/sqlite/sqlitetest"
	"github.com/kycd/kycd/storetest"
)

func open(t *testing.T) kycd.Store {
	t.Helper()
	s := sqlitetest.Open(t)
	return s
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

func TestMigrateTwiceIsANoop(t *testing.T) {
	s := open(t).(*sqlite.Store)
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
}

func TestOpenMissingDirectory(t *testing.T) {
	_, err := sqlite.Open(filepath.Join(t.TempDir(), "no", "such", "kycd.db"))
	if kycd.ErrorCode(err) != kycd.EINVALID {
		t.Fatalf("Open in a missing directory = %v, want EINVALID naming the path", err)
	}
}

// Concurrent ingests share commits; every one is committed and counted in
// exactly one batch, and a conflict in a batch leaves its neighbours alone.
func TestGroupCommit(t *testing.T) {
	var mu sync.Mutex
	batches := 0
	sum := 0
	s := sqlitetest.Open(t, sqlite.WithBatchObserver(func(n int) {
		mu.Lock()
		defer mu.Unlock()
		batches++
		sum += n
	}))
	event := func(id string) *kycd.Event {
		return &kycd.Event{ID: id, Type: "kyc_session_verified", Timestamp: time.Now(), ReceivedAt: time.Now(),
			Body: []byte(`{}`), BodyHash: id, SessionID: uuid.NewString(),
			Subject: kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}, Status: kycd.StatusVerified}
	}
	taken := event(uuid.NewString())
	if _, err := s.Ingest(context.Background(), taken, nil, nil); err != nil {
		t.Fatal(err)
	}
	const n = 64
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	ids := make([]string, n)
	for i := range n {
		ids[i] = uuid.NewString()
		wg.Go(func() { _, errs[i] = s.Ingest(context.Background(), event(ids[i]), nil, nil) })
	}
	conflicting := *taken
	conflicting.BodyHash = "other"
	wg.Go(func() { _, errs[n] = s.Ingest(context.Background(), &conflicting, nil, nil) })
	wg.Wait()
	for i, err := range errs[:n] {
		if err != nil {
			t.Fatalf("ingest %d: %v", i, err)
		}
		if _, err := s.Event(context.Background(), ids[i]); err != nil {
			t.Fatalf("event %d not stored: %v", i, err)
		}
	}
	if kycd.ErrorCode(errs[n]) != kycd.ECONFLICT {
		t.Fatalf("conflicting copy: %v, want ECONFLICT", errs[n])
	}
	if sum != n+2 {
		t.Fatalf("batches counted %d ingests, want %d", sum, n+2)
	}
	t.Logf("%d ingests in %d commits", sum, batches)
}

// Two processes starting at once on a new file both migrate; both succeed.
func TestConcurrentMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	storetest.MigrateConcurrently(t, 4, func() (storetest.Migrator, error) { return sqlite.Open(path) })
}

func TestFileIsInWALMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	sqlitetest.OpenPath(t, path)
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode = %q, %v; want wal (readers never wait for the writer)", mode, err)
	}
}
