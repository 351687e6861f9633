package dispatch

import (
	"errors"
	"time"

	"github.com/kycd/kycd"
)

// Backoff schedules the attempts of a delivery: exponential with full
// jitter, so that many deliveries failing together do not retry together.
type Backoff struct {
	Base        time.Duration // ceiling of the first delay
	Cap         time.Duration // ceiling of any delay
	MaxAttempts int           // attempts in a round before the delivery is dead
	MaxAge      time.Duration // age of a round after which the delivery is dead
}

// DefaultBackoff is DESIGN.md's schedule: base 1 s, cap 1 h, dead after 15
// attempts or 24 h.
var DefaultBackoff = Backoff{Base: time.Second, Cap: time.Hour, MaxAttempts: 15, MaxAge: 24 * time.Hour}

// Ceiling is the largest delay after the n-th failed attempt (n ≥ 1):
// min(Cap, Base·2^(n-1)).
func (b Backoff) Ceiling(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Cap; i++ {
		d *= 2
	}
	return min(d, b.Cap)
}

// Delay is the wait after the n-th failed attempt: uniform in
// [0, Ceiling(n)) drawn with rnd (a number in [0, 1)), and never less than
// what the receiver asked for with Retry-After.
func (b Backoff) Delay(n int, rnd float64, retryAfter time.Duration) time.Duration {
	d := time.Duration(rnd * float64(b.Ceiling(n)))
	return max(d, retryAfter)
}

// Next decides what follows a failed attempt: the round's n-th, ending at
// now, of a round that started at started. A permanent failure, the last
// attempt of a round or a round older than MaxAge makes the delivery dead.
func (b Backoff) Next(n int, started, now time.Time, rnd float64, err error) kycd.DeliveryUpdate {
	up := kycd.DeliveryUpdate{State: kycd.DeliveryPending, Error: err.Error()}
	var se *kycd.SinkError
	errors.As(err, &se)
	if se != nil && se.Permanent {
		up.State = kycd.DeliveryDead
		return up
	}
	var retryAfter time.Duration
	if se != nil {
		retryAfter = se.RetryAfter
	}
	up.NextAttemptAt = now.Add(b.Delay(n, rnd, retryAfter))
	if n >= b.MaxAttempts || up.NextAttemptAt.Sub(started) > b.MaxAge {
		up.State = kycd.DeliveryDead
		up.NextAttemptAt = now
	}
	return up
}
