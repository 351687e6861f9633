package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/fakeclock"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// touchCounter counts the writes of tokens' last use.
type touchCounter struct {
	kycd.Store
	n atomic.Int64
}

func (c *touchCounter) TouchToken(ctx context.Context, name string, at time.Time) error {
	c.n.Add(1)
	return c.Store.TouchToken(ctx, name, at)
}

// A token's use is written at most once a minute, however many requests
// it makes; a revoked token is refused at once.
func TestTokenUseCostsOneWriteAMinute(t *testing.T) {
	t.Parallel()
	base := sqlitetest.Open(t)
	store := &touchCounter{Store: base}
	clock := fakeclock.New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	ctx := context.Background()
	if err := (&app.Service{Store: store}).AddToken(ctx, &kycd.Token{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("viewer-token"), CreatedAt: clock.Now()}); err != nil {
		t.Fatal(err)
	}
	h := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: store,
		Ingester: startIngester(t, base, ingest.Options{}), Now: clock.Now})
	get := func() int {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/v1/whoami", nil)
		req.Header.Set("Authorization", "Bearer viewer-token")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	for range 20 {
		if code := get(); code != http.StatusOK {
			t.Fatalf("whoami = %d, want 200", code)
		}
		clock.Add(time.Second)
	}
	if n := store.n.Load(); n != 1 {
		t.Fatalf("20 requests in 20 s wrote the token's use %d times, want once", n)
	}
	clock.Add(time.Minute)
	get()
	if n := store.n.Load(); n != 2 {
		t.Fatalf("a request a minute later: %d writes, want 2", n)
	}
	tokens, err := store.Tokens(ctx)
	if err != nil || len(tokens) != 1 || !tokens[0].LastUsedAt.Equal(clock.Now()) {
		t.Fatalf("tokens = %+v, %v; want support last used now", tokens, err)
	}
	if err := (&app.Service{Store: store}).RevokeToken(ctx, app.Actor{Name: "test"}, "support"); err != nil {
		t.Fatal(err)
	}
	if code := get(); code != http.StatusUnauthorized {
		t.Fatalf("whoami with a revoked token = %d, want 401", code)
	}
}
