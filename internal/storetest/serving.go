package storetest

import (
	"testing"

	"github.com/kycd/kycd"
)

// testServingExcludes: several processes may hold the database as served,
// and while one does, none may exclude serving; once every serve let go,
// one may, and then no serve may start until it lets go.
func testServingExcludes(t *testing.T, a, b kycd.Store) {
	ctx := t.Context()
	sa, sb := a.(kycd.Serving), b.(kycd.Serving)
	served1, err := sa.HoldServing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	served2, err := sb.HoldServing(ctx)
	if err != nil {
		t.Fatalf("a second serve (a replica) could not hold the database: %v", err)
	}
	if _, err := sb.ExcludeServing(ctx); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("ExcludeServing while served = %v, want ECONFLICT", err)
	}
	if err := served1(); err != nil {
		t.Fatal(err)
	}
	if _, err := sa.ExcludeServing(ctx); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("ExcludeServing while one serve still holds = %v, want ECONFLICT", err)
	}
	if err := served2(); err != nil {
		t.Fatal(err)
	}
	excluded, err := sa.ExcludeServing(ctx)
	if err != nil {
		t.Fatalf("ExcludeServing once no serve holds = %v", err)
	}
	if _, err := sb.HoldServing(ctx); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("HoldServing while excluded = %v, want ECONFLICT", err)
	}
	if _, err := sb.ExcludeServing(ctx); kycd.ErrorCode(err) != kycd.ECONFLICT {
		t.Fatalf("a second ExcludeServing = %v, want ECONFLICT", err)
	}
	if err := excluded(); err != nil {
		t.Fatal(err)
	}
	release, err := sb.HoldServing(ctx)
	if err != nil {
		t.Fatalf("HoldServing after the exclusion ended = %v", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
}
