package server

import (
	"errors"
	"io"

	"golang.org/x/sync/semaphore"
)

// firstBodyBuffer is the most a body's buffer holds before its first bytes
// arrive. Ralio's events are a few KiB, so most bodies fit at once; a body
// that trickles in holds no more than this until its bytes really come.
const firstBodyBuffer = 16 << 10

// Errors of readBody.
var (
	errBodyTooLarge = errors.New("body over the size limit")
	errOverBudget   = errors.New("the memory for webhook bodies is in use")
)

// bodyBudget bounds the bytes of webhook bodies held in memory at once.
// A body is counted by the capacity of its buffer, taken as the buffer
// grows with the bytes that really arrived, never by the Content-Length a
// client declares: a client that declares a large body and then stalls
// holds only what it sent.
type bodyBudget struct{ sem *semaphore.Weighted }

func newBodyBudget(n int64) bodyBudget { return bodyBudget{semaphore.NewWeighted(n)} }

// read reads body, at most limit bytes; declared is its Content-Length (-1
// when unknown). It fails with errBodyTooLarge past limit and with
// errOverBudget when the budget cannot hold the next buffer; a read error
// is returned as it is. *held is what the call took from the budget, to be
// released by the caller once the body is no longer needed (also on error).
func (b bodyBudget) read(body io.Reader, declared, limit int64, held *int64) ([]byte, error) {
	if declared > limit {
		return nil, errBodyTooLarge
	}
	// A body of unknown length is over the limit once limit+1 bytes came.
	ceiling := limit + 1
	if declared >= 0 {
		ceiling = declared
	}
	var buf []byte
	grow := func() error {
		size := min(max(int64(2*cap(buf)), firstBodyBuffer), ceiling)
		if !b.sem.TryAcquire(size - int64(cap(buf))) {
			return errOverBudget
		}
		*held += size - int64(cap(buf))
		next := make([]byte, len(buf), size)
		copy(next, buf)
		buf = next
		return nil
	}
	if err := grow(); err != nil {
		return nil, err
	}
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) == ceiling {
				if declared >= 0 {
					// The server's body reader ends after Content-Length bytes.
					return buf, nil
				}
				return nil, errBodyTooLarge
			}
			if err := grow(); err != nil {
				return nil, err
			}
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			// The last bytes of a body of unknown length may come with
			// its end: limit+1 of them are one too many.
			if declared < 0 && int64(len(buf)) > limit {
				return nil, errBodyTooLarge
			}
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// release gives back what read took.
func (b bodyBudget) release(held int64) {
	if held > 0 {
		b.sem.Release(held)
	}
}
