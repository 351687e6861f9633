package requestid_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/kycd/kycd/internal/requestid"
)

func TestSane(t *testing.T) {
	for id, want := range map[string]bool{
		"550e8400-e29b-41d4-a716-446655440000":     true,
		"Root=1-67891233-abcdef012345678912345678": true,
		"abc+/=_.:":                             true,
		"":                                      false,
		"two words":                             false,
		"new\nline":                             false,
		`quo"te`:                                false,
		"é":                                     false,
		strings.Repeat("a", requestid.MaxLen):   true,
		strings.Repeat("a", requestid.MaxLen+1): false,
	} {
		if got := requestid.Sane(id); got != want {
			t.Errorf("Sane(%q) = %v, want %v", id, got, want)
		}
	}
}

// A record logged with a request's context names its id, in the groups
// and attributes of the logger too; one without it does not.
func TestHandlerAddsTheID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(requestid.Handler(slog.NewTextHandler(&buf, nil))).With("component", "server")
	ctx := requestid.With(context.Background(), "req-1")
	log.InfoContext(ctx, "with")
	log.Info("without")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "component=server request_id=req-1") || strings.Contains(lines[1], "request_id") {
		t.Errorf("the log:\n%s\nwant request_id=req-1 on the first line only", buf.String())
	}
	if requestid.From(context.Background()) != "" || requestid.From(ctx) != "req-1" {
		t.Error("From does not give back what With put")
	}
}
