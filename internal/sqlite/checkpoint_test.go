package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// A reader that keeps its snapshot of the log (Litestream holds one for
// good) must not make DropCopies hold the log's writer: an append right
// after it commits at once, not after busy_timeout (10 s), and DropCopies
// says that copies remain instead of waiting them out.
func TestDropCopiesDoesNotWaitForAReader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	s := sqlitetest.OpenPath(t, path)
	ctx := context.Background()
	appendOne := func(i int) error {
		return s.AppendLog(ctx, []*kycd.LogEntry{{EventID: fmt.Sprintf("e%d", i), ReceivedAt: time.Now(), Body: []byte(`{}`), BodyHash: "h"}})
	}
	for i := range 10 {
		if err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	reader, err := sql.Open("sqlite", "file:"+path+sqlite.LogSuffix)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rtx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()
	var n int
	if err := rtx.QueryRowContext(ctx, `SELECT count(*) FROM event_log`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Frames after the reader's snapshot, which it keeps from being
	// written back.
	if err := appendOne(10); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.DropCopies(ctx) }()
	time.Sleep(10 * time.Millisecond)
	if err := appendOne(11); err != nil {
		t.Fatal(err)
	}
	appended := time.Since(start)
	err = <-done
	took := time.Since(start)
	if err == nil {
		t.Errorf("DropCopies with a reader holding the log's WAL = nil, want an error saying copies remain")
	}
	// busy_timeout is 10 s: either wait would be that long.
	if appended > 5*time.Second || took > 5*time.Second {
		t.Errorf("with a reader on the log: an append waited %s and DropCopies %s, want both bounded well below busy_timeout (10 s)", appended, took)
	}
}
