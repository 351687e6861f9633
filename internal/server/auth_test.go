package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

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

// A path that names nothing kycd could hold (an id that is not a UUID, a
// sink or token name no sink or token may have, a subject type kycd does
// not know) is answered 400 for any role, and leaves no line in the audit
// trail: a viewer cannot put control characters into it through a
// request path (issue 15). A refusal of a well-formed path is still
// audited, with its target as the path spelled it.
func TestPathsCheckedBeforeTheAudit(t *testing.T) {
	t.Parallel()
	store := sqlitetest.Open(t)
	ctx := context.Background()
	for _, tok := range []*kycd.Token{
		{Name: "support", Role: kycd.RoleViewer, Hash: kycd.TokenHash("viewer-token"), CreatedAt: time.Now()},
		{Name: "boss", Role: kycd.RoleAdmin, Hash: kycd.TokenHash("admin-token"), CreatedAt: time.Now()},
	} {
		if err := (&app.Service{Store: store}).AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	h := server.New(server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: store,
		Ingester: startIngester(t, store, ingest.Options{})})
	do := func(method, path, token string) (int, string) {
		req := httptest.NewRequestWithContext(t.Context(), method, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}

	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(file, &doc); err != nil {
		t.Fatal(err)
	}
	const hostile = "%1B%5D0%3Bpwned%07%0D%0A2026-01-01T00:00:00.000Z%09forged%C2%9B%7F"
	routes := 0
	for path, item := range doc.Paths {
		for method := range item {
			method = strings.ToUpper(method)
			if method != "GET" && method != "POST" && method != "DELETE" {
				continue
			}
			var bad []string
			if strings.Contains(path, "{id}") {
				bad = append(bad, strings.ReplaceAll(path, "{id}", hostile), strings.ReplaceAll(path, "{id}", "not-a-uuid"))
			}
			if strings.Contains(path, "{name}") {
				bad = append(bad, strings.ReplaceAll(path, "{name}", hostile), strings.ReplaceAll(path, "{name}", "Upper"))
			}
			if strings.HasPrefix(path, "/api/v1/subjects/{id}") {
				bad = append(bad, strings.ReplaceAll(path, "{id}", uuid.NewString())+"?type="+hostile)
			}
			for _, p := range bad {
				routes++
				for _, token := range []string{"viewer-token", "admin-token"} {
					if code, body := do(method, p, token); code != http.StatusBadRequest {
						t.Errorf("%s %s with the %s = %d, want 400; %s", method, p, token, code, body)
					}
				}
			}
		}
	}
	if routes < 16 {
		t.Fatalf("%d bad paths tried: the routes with {id} and {name} were not found in openapi.json", routes)
	}
	entries, err := store.Audit(ctx, kycd.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("the audit trail holds %d entries, want none; the first: %+v", len(entries), entries[0])
	}

	// A well-formed path is still refused 403 and audited.
	id := uuid.NewString()
	if code, body := do("POST", "/api/v1/deliveries/"+strings.ToUpper(id)+"/retry", "viewer-token"); code != http.StatusForbidden {
		t.Fatalf("a viewer's retry = %d, want 403; %s", code, body)
	}
	if code, body := do("POST", "/api/v1/sinks/crm/resume", "viewer-token"); code != http.StatusForbidden {
		t.Fatalf("a viewer's resume = %d, want 403; %s", code, body)
	}
	entries, err = store.Audit(ctx, kycd.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for _, e := range entries {
		targets = append(targets, e.Target+" "+e.Outcome)
	}
	if want := []string{"sink:crm refused", "delivery:" + id + " refused"}; !slices.Equal(targets, want) {
		t.Errorf("audit targets = %q, want %q", targets, want)
	}
}
