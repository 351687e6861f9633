package dispatch_test

import (
	"errors"
	"testing"
	"time"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/dispatch"
)

func TestCeilingDoublesUpToCap(t *testing.T) {
	b := dispatch.Backoff{Base: time.Second, Cap: 10 * time.Second}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	for i, w := range want {
		if got := b.Ceiling(i + 1); got != w {
			t.Errorf("Ceiling(%d) = %s, want %s", i+1, got, w)
		}
	}
	if got := dispatch.DefaultBackoff.Ceiling(1000); got != time.Hour {
		t.Errorf("Ceiling(1000) = %s, want the 1h cap without overflow", got)
	}
}

func TestDelayIsFullJitterAndHonoursRetryAfter(t *testing.T) {
	b := dispatch.Backoff{Base: time.Second, Cap: time.Hour}
	tests := []struct {
		n          int
		rnd        float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 0, 0},
		{1, 0.5, 0, 500 * time.Millisecond},
		{3, 0.5, 0, 2 * time.Second},
		{3, 0.999, 0, 3996 * time.Millisecond},
		{1, 0.1, 2 * time.Second, 2 * time.Second},
		{5, 0.5, 2 * time.Second, 8 * time.Second},
	}
	for _, tt := range tests {
		if got := b.Delay(tt.n, tt.rnd, tt.retryAfter); got != tt.want {
			t.Errorf("Delay(%d, %v, %s) = %s, want %s", tt.n, tt.rnd, tt.retryAfter, got, tt.want)
		}
	}
}

func TestNextDecidesDeath(t *testing.T) {
	b := dispatch.Backoff{Base: time.Second, Cap: time.Minute, MaxAttempts: 3, MaxAge: time.Hour}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	retryable := errors.New("connection refused")
	tests := []struct {
		name  string
		n     int
		now   time.Time
		err   error
		state string
	}{
		{"first failure", 1, start, retryable, kycd.DeliveryPending},
		{"last attempt", 3, start, retryable, kycd.DeliveryDead},
		{"past max age", 2, start.Add(time.Hour), retryable, kycd.DeliveryDead},
		{"permanent", 1, start, &kycd.SinkError{Permanent: true, StatusCode: 400, Err: errors.New("bad request")}, kycd.DeliveryDead},
		{"retryable status", 1, start, &kycd.SinkError{StatusCode: 503, Err: errors.New("unavailable")}, kycd.DeliveryPending},
	}
	for _, tt := range tests {
		up := b.Next(tt.n, start, tt.now, 0.5, tt.err)
		if up.State != tt.state || up.Error == "" {
			t.Errorf("%s: Next = %+v, want state %s with the error", tt.name, up, tt.state)
		}
		if up.State == kycd.DeliveryPending && !up.NextAttemptAt.After(tt.now) {
			t.Errorf("%s: next attempt %s is not after now %s", tt.name, up.NextAttemptAt, tt.now)
		}
	}
}
