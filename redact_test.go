package kycd_test

import (
	"strings"
	"testing"

	"github.com/kycd/kycd"
)

func TestRedactURLHidesCredentials(t *testing.T) {
	tests := []struct{ in, want string }{
		{"log", "log"},
		{"sqlite:kycd.db", "sqlite:kycd.db"},
		{"https://user:pw@merchant.example/hooks?token=s3cret", "https://user:xxxxx@merchant.example/hooks?token=xxxxx"},
		{"https://tok3n@merchant.example/hooks#frag", "https://xxxxx@merchant.example/hooks"},
		{"nats://u:p@127.0.0.1:4222?subject=kyc&create=1", "nats://u:xxxxx@127.0.0.1:4222?create=1&subject=kyc"},
		{"postgres://kycd:pw@db:5432/kycd?sslmode=disable&password=pw2", "postgres://kycd:xxxxx@db:5432/kycd?password=xxxxx&sslmode=disable"},
		{"http://host/%zz", "[URL not shown: it does not parse]"},
	}
	for _, tt := range tests {
		if got := kycd.RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactTextHidesURLsInErrors(t *testing.T) {
	// What Go's HTTP client writes: the password starred, the query as is.
	msg := `Post "http://user:***@127.0.0.1:1/hook?token=T0K3N": dial tcp 127.0.0.1:1: connect: connection refused`
	got := kycd.RedactText(msg)
	if strings.Contains(got, "T0K3N") || !strings.Contains(got, "connection refused") || !strings.Contains(got, "127.0.0.1:1/hook") {
		t.Fatalf("RedactText = %q, want the token gone and the rest kept", got)
	}
}

func TestTokenHash(t *testing.T) {
	h := kycd.TokenHash("s3cret")
	if !kycd.IsTokenHash(h) || strings.Contains(h, "s3cret") || kycd.IsTokenHash("s3cret") {
		t.Fatalf("TokenHash = %q", h)
	}
	if !kycd.TokenMatches(h, "s3cret") || kycd.TokenMatches(h, "s3cre") || kycd.TokenMatches(h, "") {
		t.Fatal("TokenMatches accepts a wrong token or refuses the right one")
	}
}

func TestSinkRouteWants(t *testing.T) {
	tests := []struct {
		events []string
		typ    string
		want   bool
	}{
		{nil, "kyc.session.rejected", true},
		{[]string{"kyc.session.rejected"}, "kyc.session.rejected", true},
		{[]string{"kyc.session.rejected"}, "kyc.session.verified", false},
		{[]string{"kyc.session.*"}, "kyc.session.verified", true},
		{[]string{"kyc.session.*"}, "kyc.level.updated", false},
		{[]string{"*.level.updated"}, "kyb.level.updated", true},
		{[]string{"kyc.*.updated"}, "kyc.level.updated", true},
		{[]string{"kyc.*.updated"}, "kyc.session.verified", false},
		{[]string{"*"}, "kyc.document.expiring", true},
		{[]string{"kyc.session.rejected", "kyb.*"}, "kyb.level.updated", true},
		{[]string{"kyc.session"}, "kyc.session.rejected", false},
	}
	for _, tt := range tests {
		r := kycd.SinkRoute{Name: "crm", Events: tt.events}
		if got := r.Wants(tt.typ); got != tt.want {
			t.Errorf("events %v, type %s: Wants = %v, want %v", tt.events, tt.typ, got, tt.want)
		}
	}
}
