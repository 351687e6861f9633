package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// BenchmarkAppendLog commits batches of 64 bodies of about 870 bytes, the
// size of a signed Ralio event, as the group-commit appender does under
// load. Reported per batch.
func BenchmarkAppendLog(b *testing.B) {
	s := open(b)
	ctx := context.Background()
	body := bytes.Repeat([]byte("x"), 870)
	b.ResetTimer()
	for b.Loop() {
		entries := make([]*kycd.LogEntry, 64)
		for i := range entries {
			id := uuid.NewString()
			entries[i] = &kycd.LogEntry{EventID: id, ReceivedAt: base, Body: body, BodyHash: id}
		}
		if err := s.AppendLog(ctx, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProjection projects batches of 1000 session events, half of
// them on sessions of the batch before (updates), with one sink.
// Reported per batch.
func BenchmarkProjection(b *testing.B) {
	s := open(b)
	opt := kycd.PlanOptions{Sinks: kycd.Routes("log")}
	var sessions []string
	for range 500 {
		sessions = append(sessions, uuid.NewString())
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		entries := make([]*kycd.LogEntry, 1000)
		for j := range entries {
			sid := uuid.NewString()
			if j%2 == 0 {
				sid = sessions[j/2]
			}
			entries[j] = sessionEntry(sid, uuid.NewString(), kycd.StatusRejected, 0)
			entries[j].Event.Timestamp = base.Add(time.Second * time.Duration(i))
		}
		appendLog(b, s, entries...)
		b.StartTimer()
		project(b, s, opt, entries...)
	}
}
