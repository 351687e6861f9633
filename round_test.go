package kycd_test

import (
	"testing"
	"time"

	"github.com/kycd/kycd"
)

// A delivery's first round has no Round; each later one (a resend, a
// manual retry) its own, the same on every attempt of that round.
func TestDeliveryRound(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	d := kycd.Delivery{CreatedAt: created, RoundStartedAt: created}
	if r := d.Round(); r != "" {
		t.Errorf("first round: Round = %q, want \"\"", r)
	}
	d.RoundStartedAt = created.Add(time.Hour)
	second := d.Round()
	if second == "" || second != d.Round() {
		t.Errorf("second round: Round = %q, then %q; want one non-empty value", second, d.Round())
	}
	d.RoundStartedAt = created.Add(2 * time.Hour)
	if third := d.Round(); third == "" || third == second {
		t.Errorf("third round: Round = %q, want non-empty and unlike the second's %q", third, second)
	}
}
