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
	Events     int            `json:"events"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"eventsPerSecond"`
	Statuses   map[string]int `json:"statuses"` // by HTTP status, "error" for no answer
	LatencyP50 float64        `json:"latencyP50Ms"`
	LatencyP90 float64        `json:"latencyP90Ms"`
	LatencyP99 float64        `json:"latencyP99Ms"`
	LatencyMax float64        `json:"latencyMaxMs"`
}

// load sends o.count new events made from body (each with fresh event and
// session ids), o.concurrency at a time and at most o.rate a second, once
// each without retries, and reports throughput and latency percentiles.
func (e *env) load(ctx context.Context, o sendOptions, body []byte, secret, url string) error {
	if o.concurrency < 1 {
		return fmt.Errorf("--concurrency %d: must be at least 1", o.concurrency)
	}
	if o.rate < 0 {
		return fmt.Errorf("--rate %v: must be 0 (as fast as possible) or more", o.rate)
	}
	if _, err := freshen(body, true); err != nil {
		return err
	}
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}
	defer client.CloseIdleConnections()

	var tick <-chan time.Time
	if o.rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / o.rate))
		defer t.Stop()
		tick = t.C
	}
	jobs := make(chan struct{})
	var mu sync.Mutex
	statuses := map[string]int{}
	latencies := make([]time.Duration, 0, o.count)
	var wg sync.WaitGroup
	for range o.concurrency {
		wg.Go(func() {
			for range jobs {
				ev, _ := freshen(body, true)
				start := time.Now()
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
send:
	for range o.count {
		if tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
				break send
			}
		}
		select {
		case jobs <- struct{}{}:
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)

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
	if ok := statuses["200"]; ok != r.Events {
		return fmt.Errorf("%d of %d events were not answered 200", r.Events-ok, r.Events)
	}
	return ctx.Err()
}
