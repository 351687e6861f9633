package ingest

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/kycd/kycd"
)

// WriteProber is a store that can check, changing nothing, that its event
// log takes a commit (the sqlite and postgres stores are).
type WriteProber interface {
	// ProbeWrite commits a write of no effect; it fails with EUNAVAILABLE
	// when the log cannot take one.
	ProbeWrite(ctx context.Context) error
}

// How old the latest write to the log may be before Writable probes:
// after a failure, so that readiness comes back within a second of writes
// doing so; after a success, so that an idle process finds out that it can
// no longer write before a webhook does.
const (
	probeAfterFailure = time.Second
	probeAfterSuccess = 10 * time.Second
)

// writeHealth remembers the latest write probe.
type writeHealth struct {
	mu    sync.Mutex
	probe *commitResult
}

// Writable reports whether the event log takes commits, by the latest write
// to it: the latest commit or write probe, whichever is newer. It fails with
// EUNAVAILABLE when that write failed. When the store is a WriteProber, it
// probes once that write is older than a second (a failure) or ten seconds
// (a success): readiness then comes back as soon as writes do, without
// waiting for a webhook to prove it (which a load balancer that believes
// the failure would never send).
func (in *Ingester) Writable(ctx context.Context) error {
	h := &in.health
	h.mu.Lock()
	defer h.mu.Unlock()
	latest := in.app.last.Load()
	if h.probe != nil && (latest == nil || h.probe.at.After(latest.at)) {
		latest = h.probe
	}
	if prober, ok := in.store.(WriteProber); ok {
		now := in.now()
		if latest == nil || (latest.err != nil && now.Sub(latest.at) >= probeAfterFailure) || now.Sub(latest.at) >= probeAfterSuccess {
			h.probe = &commitResult{at: now, err: prober.ProbeWrite(ctx)}
			latest = h.probe
		}
	}
	if latest == nil || latest.err == nil {
		return nil
	}
	return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: "the event log cannot take commits", Err: latest.err}
}

// ProjectionStallAfter is how long the projection may fail to commit
// before Projecting reports it: longer than a batch that waits out another
// process's write (busy_timeout is 10 s on SQLite, so a batch that waited
// and failed started longer ago than this), short enough that a load
// balancer stops sending events a wedged projection would only pile up.
const ProjectionStallAfter = 5 * time.Second

// Projecting reports whether the projection commits: it fails with
// EUNAVAILABLE once every batch since the latest that committed (or found
// nothing to do) has failed, for ProjectionStallAfter or more. The log may
// still take events then (its file and lock are the log's), and they are
// acknowledged, but nothing is projected or notified until a batch commits
// again, which it reports at once.
func (in *Ingester) Projecting() error {
	since := in.proj.health.failingSince()
	if since.IsZero() {
		return nil
	}
	if d := time.Since(since); d >= ProjectionStallAfter {
		return &kycd.Error{Code: kycd.EUNAVAILABLE, Message: fmt.Sprintf("the projection has failed to commit for %s", d.Round(time.Second))}
	}
	return nil
}
