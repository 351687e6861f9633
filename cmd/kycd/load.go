package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kycd/kycd/ralio"
)

// loadReport is what a load run measured.
type loadReport struct {
	Events     int            `json:"events"` // sent
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"eventsPerSecond"`
	Statuses   map[string]int `json:"statuses"` // by HTTP status, "error" for no answer, "unsent" for events an open loop could not send by its deadline
	LatencyP50 float64        `json:"latencyP50Ms"`
	LatencyP90 float64        `json:"latencyP90Ms"`
	LatencyP99 float64        `json:"latencyP99Ms"`
	LatencyMax float64        `json:"latencyMaxMs"`
}

// load sends o.count new events made from body (each with fresh event and
// session ids), or as many as o.duration allows, o.concurrency at a time,
// once each without retries, and reports throughput and latency
// percentiles.
//
// Without a rate the load is a closed loop: each sender posts its next event
// as soon as its last one was answered, and latency counts from the post.
// With a rate it is an open loop: event i is due at i/rate after the start
// whatever the answers, and its latency counts from when it was due, so the
// wait for a free sender (at most o.concurrency in flight) is counted rather
// than hidden when the server falls behind.
func (e *env) load(ctx context.Context, o sendOptions, body []byte, secret, url string) error {
	if o.concurrency < 1 {
		return fmt.Errorf("--concurrency %d: must be at least 1", o.concurrency)
	}
	if o.rate < 0 {
		return fmt.Errorf("--rate %v: must be 0 (as fast as possible) or more", o.rate)
	}
	if o.duration < 0 {
		return fmt.Errorf("--duration %s: must be 0 (send --count events) or more", o.duration)
	}
	if _, err := freshen(body, true); err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}
	defer client.CloseIdleConnections()

	// A job is the time its event is due: zero in a closed loop, where the
	// sender starts the clock itself.
	jobs := make(chan time.Time)
	var mu sync.Mutex
	statuses := map[string]int{}
	latencies := make([]time.Duration, 0, max(o.count, 1<<16))
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for due := range jobs {
				ev, _ := freshen(body, true)
				start := due
				if start.IsZero() {
					start = time.Now()
				}
				status, _, _, err := post(ctx, client, url, ev, ralio.Sign(ev, secret))
				d := time.Since(start)
				key := strconv.Itoa(status)
				if err != nil {
					key = "error"
				}
				mu.Lock()
				statuses[key]++
				latencies = append(latencies, d)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	end := start.Add(o.duration)
	dueAt := func(i int) time.Time { return start.Add(time.Duration(float64(i) * float64(time.Second) / o.rate)) }
	// An open loop with a duration ends at its deadline even when the
	// server has fallen behind, so that the run stays as long as asked:
	// events due by then that found no free sender are reported unsent.
	var deadline <-chan time.Time
	if o.rate > 0 && o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		deadline = t.C
	}
	wait := time.NewTimer(0)
	defer wait.Stop()
	unsent := 0
send:
	for i := 0; o.duration > 0 || i < o.count; i++ {
		var due time.Time
		if o.rate > 0 {
			due = dueAt(i)
			if o.duration > 0 && !due.Before(end) {
				break
			}
			if d := time.Until(due); d > 0 {
				wait.Reset(d)
				select {
				case <-wait.C:
				case <-ctx.Done():
					break send
				}
			}
		} else if o.duration > 0 && !time.Now().Before(end) {
			break
		}
		select {
		case jobs <- due:
		case <-deadline:
			for ; dueAt(i).Before(end); i++ {
				unsent++
			}
			break send
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	if unsent > 0 {
		statuses["unsent"] = unsent
	}

	r := loadReport{Events: len(latencies), Seconds: elapsed.Seconds(), Statuses: statuses}
	if elapsed > 0 {
		r.PerSecond = float64(r.Events) / elapsed.Seconds()
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[min(len(latencies)-1, int(p*float64(len(latencies))))].Microseconds()) / 1000
	}
	r.LatencyP50, r.LatencyP90, r.LatencyP99, r.LatencyMax = pct(.50), pct(.90), pct(.99), pct(1)
	if e.cfg.JSON {
		if err := printJSON(e.stdout, r); err != nil {
			return err
		}
	} else {
		keys := make([]string, 0, len(statuses))
		for k := range statuses {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s: %d", k, statuses[k]))
		}
		fmt.Fprintf(e.stdout, "sent %d events in %.2fs: %.0f events/s (%s)\nlatency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
			r.Events, r.Seconds, r.PerSecond, strings.Join(parts, ", "), r.LatencyP50, r.LatencyP90, r.LatencyP99, r.LatencyMax)
	}
	if ok := statuses["200"]; ok != r.Events+unsent {
		return fmt.Errorf("%d of %d events were not answered 200", r.Events+unsent-ok, r.Events+unsent)
	}
	return ctx.Err()
}
