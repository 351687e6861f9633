package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"

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
	errOverShare    = errors.New("the peer's share of the memory for webhook bodies is in use")
)

// bodyBudget bounds the bytes of webhook bodies held in memory at once,
// and the share of them that the requests of one peer address hold (so
// that one client cannot take it all while Ralio, from other addresses,
// is refused). A body is counted by the capacity of its buffer, taken as
// the buffer grows with the bytes that really arrived, never by the
// Content-Length a client declares: a client that declares a large body
// and then stalls holds only what it sent.
type bodyBudget struct {
	sem   *semaphore.Weighted
	share int64

	mu   sync.Mutex
	peer map[netip.Prefix]int64 // bytes held by each peer holding any
}

func newBodyBudget(n, share int64) *bodyBudget {
	return &bodyBudget{sem: semaphore.NewWeighted(n), share: share, peer: map[netip.Prefix]int64{}}
}

// peerOf is the address a request's share is counted by: its IPv4
// address, or the /64 of an IPv6 one (one host usually holds a whole
// /64). A remote address that is not an IP (tests, unix sockets) is one
// peer of its own.
func peerOf(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	if ip.Is4() {
		return netip.PrefixFrom(ip, 32)
	}
	p, _ := ip.Prefix(64)
	return p
}

// take takes n bytes for peer, from its share and then from the budget.
func (b *bodyBudget) take(peer netip.Prefix, n int64) error {
	b.mu.Lock()
	if b.peer[peer]+n > b.share {
		b.mu.Unlock()
		return errOverShare
	}
	b.peer[peer] += n
	b.mu.Unlock()
	if !b.sem.TryAcquire(n) {
		b.give(peer, 0, n)
		return errOverBudget
	}
	return nil
}

// give gives back n bytes of the budget and share bytes of peer's share.
func (b *bodyBudget) give(peer netip.Prefix, n, share int64) {
	if n > 0 {
		b.sem.Release(n)
	}
	if share <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if left := b.peer[peer] - share; left > 0 {
		b.peer[peer] = left
	} else {
		delete(b.peer, peer)
	}
}

// read reads body, at most limit bytes, for peer; declared is its
// Content-Length (-1 when unknown). It fails with errBodyTooLarge past
// limit, with errOverShare when peer's share cannot hold the next buffer,
// and with errOverBudget when the budget cannot; a read error is returned
// as it is. *held is what the call took from the budget, to be released by
// the caller once the body is no longer needed (also on error).
func (b *bodyBudget) read(body io.Reader, peer netip.Prefix, declared, limit int64, held *int64) ([]byte, error) {
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
		if err := b.take(peer, size-int64(cap(buf))); err != nil {
			return err
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

// release gives back what read took for peer.
func (b *bodyBudget) release(peer netip.Prefix, held int64) { b.give(peer, held, held) }

// Decoding of Content-Encoding: gzip. The decoded body is bounded by the
// body limit and by a ratio to the bytes received, and is held in the same
// budget as a body read from the network.
const (
	// maxGzipRatio bounds how many decoded bytes each received byte may
	// give: Ralio's JSON compresses about ten to one, a zip bomb a
	// thousand to one.
	maxGzipRatio = 100
	// minGzipLimit is the decoded size allowed whatever the ratio, so a
	// small event that compresses well is read whole.
	minGzipLimit = 64 << 10
)

// errBadEncoding is a body that its Content-Encoding cannot decode.
var errBadEncoding = errors.New("the body is not valid for its Content-Encoding")

// contentCoding is how a request's Content-Encoding header says its body
// is coded: "" for as sent (none, or identity), "gzip", or the header as
// it is for a coding kycd does not decode.
func contentCoding(h []string) string {
	coding := ""
	for _, v := range h {
		for c := range strings.SplitSeq(v, ",") {
			switch c = strings.ToLower(strings.TrimSpace(c)); c {
			case "", "identity":
			case "gzip", "x-gzip":
				if coding != "" {
					return strings.Join(h, ", ")
				}
				coding = "gzip"
			default:
				return strings.Join(h, ", ")
			}
		}
	}
	return coding
}

// gunzip decodes raw, a body received with Content-Encoding: gzip, into a
// buffer of the budget (see read), at most min(limit, maxGzipRatio ×
// len(raw)) bytes (never less than minGzipLimit): errBodyTooLarge beyond,
// errBadEncoding when raw is not gzip.
func (b *bodyBudget) gunzip(raw []byte, peer netip.Prefix, limit int64, held *int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, errBadEncoding
	}
	bound := min(limit, max(minGzipLimit, maxGzipRatio*int64(len(raw))))
	body, err := b.read(zr, peer, -1, bound, held)
	switch {
	case err == nil:
		return body, nil
	case errors.Is(err, errBodyTooLarge), errors.Is(err, errOverBudget), errors.Is(err, errOverShare):
		return nil, err
	default:
		return nil, errBadEncoding
	}
}
