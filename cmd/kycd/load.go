package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

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
// once each (sent again only when a kept-alive connection turns out closed
// before any answer), and reports throughput and latency percentiles.
//
// Without a rate the load is a closed loop: each sender posts its next event
// as soon as its last one was answered, and latency counts from the post.
// With a rate it is an open loop: event i is due at i/rate after the start
// whatever the answers, and its latency counts from when it was due, so the
// wait for a free sender (at most o.concurrency in flight) is counted rather
// than hidden when the server falls behind.
func (e *env) load(ctx context.Context, o sendOptions, body []byte, secret, url string) error {
	if o.concurrency < 1 {
		return usagef("--concurrency %d: must be at least 1", o.concurrency)
	}
	if o.rate < 0 {
		return usagef("--rate %v: must be 0 (as fast as possible) or more", o.rate)
	}
	if o.duration < 0 {
		return usagef("--duration %s: must be 0 (send --count events) or more", o.duration)
	}
	events, err := newLoadEvents(body)
	if err != nil {
		return err
	}
	target, err := newLoadTarget(url)
	if err != nil {
		return err
	}

	// A job is the time its event is due: zero in a closed loop, where the
	// sender starts the clock itself. Each sender keeps its own counts,
	// added up at the end.
	jobs := make(chan time.Time)
	senders := make([]*loadSender, o.concurrency)
	var wg sync.WaitGroup
	for i := range senders {
		s := newLoadSender(ctx, target, events, secret, max(o.count/o.concurrency+1, 1<<12))
		senders[i] = s
		wg.Go(func() {
			defer s.close()
			for due := range jobs {
				start := due
				if start.IsZero() {
					start = time.Now()
				}
				status, err := s.send(start)
				if err != nil {
					status = 0
				}
				s.statuses[status]++
				s.latencies = append(s.latencies, time.Since(start))
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
	statuses := map[string]int{}
	var latencies []time.Duration
	for _, s := range senders {
		for status, n := range s.statuses {
			key := strconv.Itoa(status)
			if status == 0 {
				key = "error"
			}
			statuses[key] += n
		}
		latencies = append(latencies, s.latencies...)
	}
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

// loadEvents makes the events of a load run from one body without decoding
// or encoding JSON per event: each sender keeps its own copy of the body and
// overwrites, in place, the bytes that make an event new (its event id,
// which ingest deduplicates on, and its session id, so that every event
// sets a session of its own rather than being stale) and its timestamp, then
// signs the bytes. The rest of the body is sent as it is, white space
// included, as Ralio sends it.
type loadEvents struct {
	body []byte
	// The offsets in body of the values overwritten: every occurrence of
	// the event id and of the session id (36 bytes each, a UUID), and the
	// timestamp (24 bytes, in stampLayout). An event without a session has
	// no sessions.
	ids, sessions []int
	stamp         int
}

// stampLayout is the form of the timestamps the load sends, the one Ralio's
// samples use.
const stampLayout = "2006-01-02T15:04:05.000Z"

// newLoadEvents finds, once, where the values of body that differ between
// events lie. A body whose values cannot be overwritten in place (an id that
// is not 36 bytes, a timestamp of another length, escapes) is re-encoded
// once by freshen, which gives them those lengths.
func newLoadEvents(body []byte) (*loadEvents, error) {
	fresh, err := freshen(body, true)
	if err != nil {
		return nil, err
	}
	if l, ok := findSlots(body); ok {
		return l, nil
	}
	if l, ok := findSlots(fresh); ok {
		return l, nil
	}
	return nil, errors.New("the event has no id and timestamp that a load can replace") // freshen sets both
}

// findSlots finds in body the event id and session id as ingest reads them
// (ralio.Parse), or, for a body ingest would refuse, where freshen would
// set them (eventId, else id, and data.sessionId), and the timestamp. It
// fails when one of them is not a plain string of the length written over
// it.
func findSlots(body []byte) (*loadEvents, bool) {
	var id, stamp, session []byte
	stampAt := -1
	hasSession := false
	d := jsontext.NewDecoder(bytes.NewReader(body))
	// value reads the next value, a copy: the decoder reuses its buffer.
	value := func() ([]byte, error) {
		v, err := d.ReadValue()
		return bytes.Clone(v), err
	}
	if t, err := d.ReadToken(); err != nil || t.Kind() != '{' {
		return nil, false
	}
	for d.PeekKind() != '}' {
		name, err := d.ReadToken()
		if err != nil {
			return nil, false
		}
		var v []byte
		switch name.String() {
		case "id":
			if v, err = value(); id == nil {
				id = v
			}
		case "eventId":
			id, err = value()
		case "timestamp":
			stamp, err = value()
			stampAt = int(d.InputOffset()) - len(stamp) + 1
		case "data":
			if d.PeekKind() != '{' {
				err = d.SkipValue()
				break
			}
			if _, err = d.ReadToken(); err != nil {
				return nil, false
			}
			for d.PeekKind() != '}' {
				name, err := d.ReadToken()
				if err != nil {
					return nil, false
				}
				if name.String() == "sessionId" {
					hasSession = true
					session, err = value()
				} else {
					err = d.SkipValue()
				}
				if err != nil {
					return nil, false
				}
			}
			_, err = d.ReadToken()
		default:
			err = d.SkipValue()
		}
		if err != nil {
			return nil, false
		}
	}
	if ev, err := ralio.Parse(body); err == nil {
		id, session = []byte(`"`+ev.ID+`"`), []byte(`"`+ev.SessionID+`"`)
		hasSession = ev.SessionID != ""
	}
	l := &loadEvents{body: body, stamp: -1}
	if plainString(stamp, len(stampLayout)) {
		l.stamp = stampAt
	}
	if plainString(id, 36) {
		l.ids = occurrences(body, id)
	}
	if hasSession && plainString(session, 36) {
		for _, at := range occurrences(body, session) {
			if !slices.Contains(l.ids, at) {
				l.sessions = append(l.sessions, at)
			}
		}
	}
	return l, len(l.ids) > 0 && l.stamp > 0 && (len(l.sessions) > 0 || !hasSession)
}

// plainString says whether v is a JSON string of n bytes without escapes.
func plainString(v []byte, n int) bool {
	return len(v) == n+2 && v[0] == '"' && v[n+1] == '"' && bytes.IndexByte(v, '\\') < 0
}

// occurrences returns the offsets in body of the text of every JSON string
// equal to quoted, a quoted string, ignoring case (the case of a UUID's hex
// digits does not matter to ingest).
func occurrences(body, quoted []byte) []int {
	var at []int
	for i := 0; i+len(quoted) <= len(body); i++ {
		if bytes.EqualFold(body[i:i+len(quoted)], quoted) {
			at = append(at, i+1)
			i += len(quoted) - 1
		}
	}
	return at
}

// eventWriter makes one sender's events: its copy of the body, overwritten
// for each event, and the HMAC it signs them with (made once, reset per
// event). It allocates nothing per event.
type eventWriter struct {
	l     *loadEvents
	body  []byte
	mac   hash.Hash
	rng   *rand.ChaCha8
	sum   [sha256.Size]byte
	sig   [2 * sha256.Size]byte
	stamp [64]byte // room for time.AppendFormat, which grows a smaller buffer
}

// newEventWriter returns a writer of l's events into body, a copy of l.body
// the writer may overwrite (the tail of a sender's request).
func newEventWriter(l *loadEvents, secret string, body []byte) *eventWriter {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand)
	return &eventWriter{l: l, body: body, mac: hmac.New(sha256.New, []byte(secret)), rng: rand.NewChaCha8(seed)}
}

// next makes a new event stamped now: fresh random (version 4) event and
// session ids. It returns the body and its X-Signature (the hex HMAC-SHA256),
// both valid until the next call.
func (w *eventWriter) next(now time.Time) (body, sig []byte) {
	w.putUUID(w.body[w.l.ids[0]:])
	for _, at := range w.l.ids[1:] {
		copy(w.body[at:at+36], w.body[w.l.ids[0]:])
	}
	if len(w.l.sessions) > 0 {
		w.putUUID(w.body[w.l.sessions[0]:])
		for _, at := range w.l.sessions[1:] {
			copy(w.body[at:at+36], w.body[w.l.sessions[0]:])
		}
	}
	copy(w.body[w.l.stamp:], now.UTC().AppendFormat(w.stamp[:0], stampLayout))
	w.mac.Reset()
	w.mac.Write(w.body)
	hex.Encode(w.sig[:], w.mac.Sum(w.sum[:0]))
	return w.body, w.sig[:]
}

// putUUID writes a random version 4 UUID over the first 36 bytes of dst.
func (w *eventWriter) putUUID(dst []byte) {
	var u [16]byte
	binary.LittleEndian.PutUint64(u[:8], w.rng.Uint64())
	binary.LittleEndian.PutUint64(u[8:], w.rng.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	hex.Encode(dst[0:8], u[0:4])
	dst[8] = '-'
	hex.Encode(dst[9:13], u[4:6])
	dst[13] = '-'
	hex.Encode(dst[14:18], u[6:8])
	dst[18] = '-'
	hex.Encode(dst[19:23], u[8:10])
	dst[23] = '-'
	hex.Encode(dst[24:36], u[10:16])
}

// loadTarget is where a load sends, and the head of its requests up to the
// signature's value.
type loadTarget struct {
	addr string
	tls  *tls.Config // nil for http
	head string
}

func newLoadTarget(rawURL string) (*loadTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", rawURL, err)
	}
	t := &loadTarget{addr: u.Host}
	switch u.Scheme {
	case "http":
		if u.Port() == "" {
			t.addr = net.JoinHostPort(u.Hostname(), "80")
		}
	case "https":
		if u.Port() == "" {
			t.addr = net.JoinHostPort(u.Hostname(), "443")
		}
		t.tls = &tls.Config{ServerName: u.Hostname()}
	default:
		return nil, fmt.Errorf("--url %q: want an http:// or https:// URL", rawURL)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("--url %q: no host", rawURL)
	}
	// What net/http would send for the same request.
	h := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: Go-http-client/1.1\r\n"
	if u.User != nil {
		pass, _ := u.User.Password()
		h += "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(u.User.Username()+":"+pass)) + "\r\n"
	}
	t.head = h + "Content-Type: application/json\r\n" + ralio.SignatureHeader + ": "
	return t, nil
}

// loadSender posts one sender's events, one at a time, on one keep-alive
// HTTP/1.1 connection (a new one when the server closes it). It writes the
// requests itself: the request is one buffer, its head written once, whose
// signature and body the eventWriter overwrites for each event, sent with one
// write. Answers are read with http.ReadResponse. With net/http's client
// the load tool spent 1.4 times the floor's CPU per event (two goroutines
// per connection, and hand-offs between them and the caller), so that on
// shared cores it, not the floor, ran out of CPU first; this way it spends
// about two thirds of the floor's (docs/benchmarks.md).
type loadSender struct {
	// What it measured: answers by status (0: none), latencies.
	statuses  map[int]int
	latencies []time.Duration

	ctx    context.Context
	target *loadTarget
	w      *eventWriter
	req    []byte // head, then body
	sigAt  int    // offset in req of the signature's value
	conn   net.Conn
	br     *bufio.Reader
	stop   func() bool // of the context.AfterFunc that unblocks conn
	reused bool        // conn has carried a request before
}

func newLoadSender(ctx context.Context, t *loadTarget, l *loadEvents, secret string, events int) *loadSender {
	head := t.head
	sigAt := len(head)
	head += strings.Repeat("0", 2*sha256.Size) + "\r\nContent-Length: " + strconv.Itoa(len(l.body)) + "\r\n\r\n"
	req := append([]byte(head), l.body...)
	return &loadSender{
		statuses: map[int]int{}, latencies: make([]time.Duration, 0, events),
		ctx: ctx, target: t, w: newEventWriter(l, secret, req[len(head):]), req: req, sigAt: sigAt,
	}
}

// send posts a new event stamped now, once, and returns the answer's
// status. A connection that the server closed while it was idle fails
// before any answer; then the event goes once more on a new one (a retry
// is harmless: kycd takes a repeated event as a duplicate).
func (s *loadSender) send(now time.Time) (int, error) {
	_, sig := s.w.next(now)
	copy(s.req[s.sigAt:], sig)
	status, retry, err := s.post(now)
	if retry {
		status, _, err = s.post(now)
	}
	return status, err
}

// post sends the request once; on failure, retry says whether the
// connection was one already used that failed before any answer.
func (s *loadSender) post(now time.Time) (status int, retry bool, err error) {
	if s.conn == nil {
		if err := s.dial(); err != nil {
			return 0, false, err
		}
	}
	reused := s.reused
	s.reused = true
	answered := false
	defer func() {
		if err != nil {
			s.close()
			retry = reused && !answered && !errors.Is(err, os.ErrDeadlineExceeded) && s.ctx.Err() == nil
		}
	}()
	// Ralio waits 60 s for an answer.
	if err := s.conn.SetDeadline(now.Add(60 * time.Second)); err != nil {
		return 0, false, err
	}
	if err := s.ctx.Err(); err != nil {
		return 0, false, err
	}
	if _, err := s.conn.Write(s.req); err != nil {
		return 0, false, err
	}
	if _, err := s.br.Peek(1); err != nil {
		return 0, false, err
	}
	answered = true
	resp, err := http.ReadResponse(s.br, nil)
	if err != nil {
		return 0, false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, false, err
	}
	if resp.Close {
		s.close()
	}
	return resp.StatusCode, false, nil
}

func (s *loadSender) dial() error {
	d := net.Dialer{Timeout: 60 * time.Second}
	var c net.Conn
	var err error
	if s.target.tls != nil {
		td := tls.Dialer{NetDialer: &d, Config: s.target.tls}
		c, err = td.DialContext(s.ctx, "tcp", s.target.addr)
	} else {
		c, err = d.DialContext(s.ctx, "tcp", s.target.addr)
	}
	if err != nil {
		return err
	}
	s.conn, s.br, s.reused = c, bufio.NewReader(c), false
	// An interrupted load does not wait for the answers in flight.
	s.stop = context.AfterFunc(s.ctx, func() { _ = c.SetDeadline(time.Now()) })
	return nil
}

func (s *loadSender) close() {
	if s.conn != nil {
		s.stop()
		_ = s.conn.Close()
		s.conn = nil
	}
}
