package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// BenchmarkProjection appends b.N session events to the log in batches of
// 64 (as the appender does under load) and projects them in batches of
// 1000, with one sink, and reports the bytes written per event to each
// file, as write(2) saw them (wchar of /proc/self/io: WAL frames and
// checkpoints; the disk may write more). Sub-benchmarks vary the main
// file's wal_autocheckpoint; run e.g.
//
//	go test -run - -bench Projection -benchtime 20000x ./sqlite/
func BenchmarkProjection(b *testing.B) {
	for _, pages := range []int{1000, 4000, mainCheckpointPages, 16000} {
		b.Run(fmt.Sprintf("autocheckpoint=%d", pages), func(b *testing.B) { benchmarkProjection(b, pages) })
	}
}

func benchmarkProjection(b *testing.B, checkpointPages int) {
	ctx := context.Background()
	s, err := Open(b.Context(), filepath.Join(b.TempDir(), "kycd.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, fmt.Sprintf(`PRAGMA wal_autocheckpoint = %d`, checkpointPages)); err != nil {
		b.Fatal(err)
	}
	// Two events per session (rejected, then verified), sessions and users
	// with random ids, bodies of ~870 bytes like Ralio's.
	padding := strings.Repeat("x", 700)
	entries := make([]*kycd.LogEntry, b.N)
	byID := make(map[int]*kycd.Event, b.N)
	var sid string
	var sub kycd.SubjectRef
	for i := range entries {
		id := uuid.NewString()
		ev := &kycd.Event{ID: id, Type: "kyc_session_failed", Timestamp: time.Now().UTC(), ReceivedAt: time.Now().UTC(), Status: kycd.StatusRejected,
			Checks: []kycd.Check{{Type: "document-verification", State: "Refused", Reasons: []kycd.Reason{{Type: "document", Code: "EXPIRED_DOCUMENT", Message: "The provided document has expired"}}}}}
		if i%2 == 0 {
			sid, sub = uuid.NewString(), kycd.SubjectRef{Type: kycd.SubjectUser, ID: uuid.NewString()}
		} else {
			ev.Type, ev.Status, ev.Checks = "kyc_session_verified", kycd.StatusVerified, nil
		}
		ev.SessionID, ev.Subject = sid, sub
		ev.Body = fmt.Appendf(nil, `{"id":%q,"event":%q,"data":{"sessionId":%q,"userId":%q,"pad":%q}}`, id, ev.Type, sid, sub.ID, padding)
		ev.BodyHash = strings.Repeat("0", 64)
		entries[i] = &kycd.LogEntry{EventID: id, ReceivedAt: ev.ReceivedAt, Body: ev.Body, BodyHash: ev.BodyHash}
		byID[i] = ev
	}
	opt := kycd.PlanOptions{Sinks: kycd.Routes("crm")}
	b.ResetTimer()
	start := wchar(b)
	for i := 0; i < len(entries); i += 64 {
		if err := s.AppendLog(ctx, entries[i:min(i+64, len(entries))]); err != nil {
			b.Fatal(err)
		}
	}
	appended := wchar(b)
	for i, e := range entries {
		e.Event = byID[i]
	}
	for {
		tx, err := s.BeginProjection(ctx)
		if err != nil {
			b.Fatal(err)
		}
		claimed, err := tx.ClaimLog(ctx, 1000, 1<<30)
		if err != nil {
			b.Fatal(err)
		}
		if len(claimed) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				b.Fatal(err)
			}
			break
		}
		for _, e := range claimed {
			e.Event = entries[e.Seq-1].Event
		}
		cur, err := tx.Current(ctx, kycd.Keys(claimed))
		if err != nil {
			b.Fatal(err)
		}
		if err := tx.Apply(ctx, kycd.PlanBatch(claimed, cur, opt)); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			b.Fatal(err)
		}
	}
	end := wchar(b)
	b.StopTimer()
	b.ReportMetric(float64(appended-start)/float64(b.N), "log-B/event")
	b.ReportMetric(float64(end-appended)/float64(b.N), "main-B/event")
}

// wchar is the bytes this process has passed to write(2) so far.
func wchar(b *testing.B) int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		b.Skip("no /proc/self/io:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	b.Skip("no wchar in /proc/self/io")
	return 0
}
