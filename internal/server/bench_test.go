package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite"
	"github.com/kycd/kycd/ralio"
)

// acceptingStore records nothing: the baseline that shows what the store
// costs on top of signature, decoding and HTTP handling.
type acceptingStore struct {
	kycd.Store
	seq *atomic.Int64
}

func (s acceptingStore) AppendLog(_ context.Context, entries []*kycd.LogEntry) error {
	for _, e := range entries {
		e.Seq = s.seq.Add(1)
	}
	return nil
}

func (acceptingStore) KnownEvents(context.Context, []string) (map[string]kycd.KnownEvent, error) {
	return nil, nil
}

func (acceptingStore) BeginProjection(context.Context) (kycd.ProjectionTx, error) {
	return nil, kycd.Errorf(kycd.EUNAVAILABLE, "the baseline projects nothing")
}

// BenchmarkWebhook measures one signed kyc_session_failed delivery through
// the handler: with a store that records nothing (baseline) and with the
// real SQLite store (event, projection, history, checks, outbox in one
// fsynced transaction).
func BenchmarkWebhook(b *testing.B) {
	for _, bc := range []struct {
		name string
		wrap func(*sqlite.Store) kycd.Store
	}{
		{"baseline-no-store", func(s *sqlite.Store) kycd.Store { return acceptingStore{s, new(atomic.Int64)} }},
		{"sqlite", func(s *sqlite.Store) kycd.Store { return s }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h, _ := newServer(b, bc.wrap)
			bodies := make([][]byte, b.N)
			for i := range bodies {
				bodies[i] = []byte(fmt.Sprintf(`{"id":%q,"event":"kyc_session_failed","timestamp":"2025-06-19T17:14:13.123Z","data":{"sessionId":%q,"userId":"550e8400-e29b-41d4-a716-446655440001","checks":[{"type":"document-verification","state":"Refused","data":{},"reasons":[{"type":"document","code":"EXPIRED_DOCUMENT","message":"The provided document has expired"}]},{"type":"face-matching","state":"Refused","data":{},"reasons":[{"type":"face-match","code":"NO_MATCH","message":"Face does not match the document photo"}]}]}}`,
					uuid.NewString(), uuid.NewString()))
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if rec := post(b, h, bodies[i]); rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkWebhookParallel is BenchmarkWebhook/sqlite with 8 deliveries in
// flight per core, as Ralio's retries and bursts produce: SQLite takes one
// writer at a time, so this shows how commits queue.
func BenchmarkWebhookParallel(b *testing.B) {
	h, _ := newServer(b, func(s *sqlite.Store) kycd.Store { return s })
	runParallel(b, h)
}

// BenchmarkWebhookParallelPostgres is BenchmarkWebhookParallel on the
// PostgreSQL store (KYCD_TEST_POSTGRES), where concurrent ingests commit in
// parallel instead of in groups.
func BenchmarkWebhookParallelPostgres(b *testing.B) {
	store := postgrestest.Open(b, postgrestest.URL(b))
	v, _ := ralio.NewVerifier(secret)
	h := server.New(server.Options{Logger: slog.New(slog.DiscardHandler), Store: store, Verifier: v,
		Ingester: startIngester(b, store, ingest.Options{Sinks: kycd.Routes("log"), MaxBacklog: 1 << 30}), AdminToken: "token"})
	runParallel(b, h)
}

// runParallel sends new kyc_session_verified events through h, 8 in flight
// per core, for b.N events.
func runParallel(b *testing.B, h http.Handler) {
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := []byte(fmt.Sprintf(`{"id":%q,"event":"kyc_session_verified","timestamp":"2025-06-19T17:14:13.123Z","data":{"sessionId":%q,"userId":"550e8400-e29b-41d4-a716-446655440001"}}`,
				uuid.NewString(), uuid.NewString()))
			if rec := post(b, h, body); rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
