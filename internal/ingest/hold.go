package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kycd/kycd"
)

// DefaultHold bounds the signature hold when Options.Hold is zero.
var DefaultHold = kycd.SignatureHold{MaxCount: 10000, MaxBytes: 64 << 20}

// Bounds of the bodies waiting to enter the hold: a flood of bad signatures
// costs at most this much memory and one write at a time.
const (
	holdQueue      = 64
	holdQueueBytes = 8 << 20
	holdTimeout    = 5 * time.Second
)

// heldProblem is the problem a held body was answered with.
var heldProblem = json.RawMessage(`{"type":"about:blank","title":"Unauthorized","status":401,"detail":"missing or wrong X-Signature"}`)

// holder writes the bodies whose signature failed into the signature hold,
// one at a time, off the request: the 401 does not wait for the store, and
// a body that finds the queue full is not held.
type holder struct {
	store  Store
	caps   kycd.SignatureHold
	now    func() time.Time
	logger *slog.Logger
	queue  chan *kycd.Quarantined
	queued atomic.Int64 // bytes in queue
	start  sync.Once
	done   chan struct{}
	closed sync.Once
	wg     sync.WaitGroup
}

func newHolder(store Store, caps kycd.SignatureHold, now func() time.Time, logger *slog.Logger) *holder {
	return &holder{store: store, caps: caps, now: now, logger: logger, queue: make(chan *kycd.Quarantined, holdQueue), done: make(chan struct{})}
}

// Hold queues body, refused for its signature, for the signature hold, and
// reports whether it was queued: not when the queue is full or the
// Ingester closed. The body is copied.
func (in *Ingester) Hold(body []byte, signature string) bool {
	return in.hold.add(body, signature)
}

// HoldWait waits until the bodies queued for the hold are written (tests).
func (in *Ingester) HoldWait(ctx context.Context) error {
	for len(in.hold.queue) > 0 || in.hold.queued.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (h *holder) add(body []byte, signature string) bool {
	select {
	case <-h.done:
		return false
	default:
	}
	n := int64(len(body))
	if h.queued.Add(n) > holdQueueBytes {
		h.queued.Add(-n)
		return false
	}
	q := &kycd.Quarantined{
		ID: uuid.NewString(), ReceivedAt: h.now(), Reason: kycd.QuarantineSignature, Problem: heldProblem,
		Body: append([]byte(nil), body...), Signature: signature,
	}
	h.start.Do(func() {
		h.wg.Add(1)
		go h.run()
	})
	select {
	case h.queue <- q:
		return true
	default:
		h.queued.Add(-n)
		return false
	}
}

func (h *holder) run() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			return
		case q := <-h.queue:
			h.write(q)
		}
	}
}

func (h *holder) write(q *kycd.Quarantined) {
	defer h.queued.Add(-int64(len(q.Body)))
	ctx, cancel := context.WithTimeout(context.Background(), holdTimeout)
	defer cancel()
	dropped, err := h.store.HoldQuarantine(ctx, q, h.caps)
	if err != nil {
		h.logger.Warn("could not keep a body refused for its signature in the hold", "err", err)
		return
	}
	if dropped > 0 {
		h.logger.Debug("signature hold full: oldest bodies dropped", "dropped", dropped)
	}
}

// close stops the writer; bodies still queued are not held.
func (h *holder) close() {
	h.closed.Do(func() { close(h.done) })
	h.wg.Wait()
}
