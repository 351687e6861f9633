package server

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Reasons a connection was closed, as kycd_http_connections_closed_total
// counts them.
const (
	closeEvicted       = "evicted"
	closeRefused       = "refused"
	closeUntrustedIdle = "untrusted_idle"
	closeOther         = "other"
)

var closeReasons = []string{closeEvicted, closeRefused, closeUntrustedIdle, closeOther}

// DefaultUntrustedIdleTimeout is how long a connection that never sent a
// valid signature or API token may stay idle (before its first request, or
// between two) unless configured.
const DefaultUntrustedIdleTimeout = 5 * time.Second

// newConnGrace is how long a new connection is left to send its first
// request before the cap may close it to make room: a client that just
// connected has had no chance to be idle.
const newConnGrace = time.Second

// refusal is what a connection accepted beyond the cap is told, when no
// idle connection can make room for it, before it is closed.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// ConnLimiter is a listener that keeps at most a number of connections
// open, so that clients holding connections can never take the file
// descriptors that accepting Ralio's deliveries needs. At the cap a new
// connection is accepted, never left waiting in the kernel's queue, and
// the connection idle the longest is closed to make room for it
// (untrusted ones first: those that never sent a valid signature or API
// token); only when none is idle is the new one answered 503 and closed.
// Apart from the cap, a connection that never sent a valid signature or
// token is closed once idle for the untrusted idle timeout, while Ralio's
// keep the server's IdleTimeout.
//
// Serve an http.Server on it with its ConnState and ConnContext, so the
// limiter knows which connections are idle and Trust can mark them.
type ConnLimiter struct {
	net.Listener
	// TLS says that the connections carry TLS (the server is served with
	// ServeTLS on the limiter): one refused at the cap is closed without
	// the plain-text 503, which its client could not read.
	TLS bool

	max       int
	untrusted time.Duration
	metrics   *Metrics
	now       func() time.Time

	mu    sync.Mutex
	conns map[*limitedConn]struct{}
}

// NewConnLimiter limits l to n connections (at least 1), closing
// untrusted connections idle for untrustedIdle (never when 0), counted in
// m (may be nil).
func NewConnLimiter(l net.Listener, n int, untrustedIdle time.Duration, m *Metrics) *ConnLimiter {
	return &ConnLimiter{Listener: l, max: max(n, 1), untrusted: untrustedIdle, metrics: m, now: time.Now,
		conns: map[*limitedConn]struct{}{}}
}

// limitedConn is a connection of a ConnLimiter.
type limitedConn struct {
	net.Conn
	l *ConnLimiter

	// Under l.mu.
	state   http.ConnState
	since   time.Time // when it was opened or last became idle
	trusted bool
	gen     int // bumped at each change of state, so a stale timer does nothing
	timer   *time.Timer
	reason  string // why it is being closed; closeOther when ""

	closing sync.Once
	err     error
}

// Accept accepts the next connection, making room for it at the cap.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			// Out of file descriptors below the cap (the store, sinks and
			// other files hold some): close the connection idle the
			// longest so that the server's retry of Accept finds one.
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				l.mu.Lock()
				victim := l.victimLocked()
				if victim != nil {
					victim.reason = closeEvicted
				}
				l.mu.Unlock()
				if victim != nil {
					_ = victim.Close()
				}
			}
			return nil, err
		}
		lc := &limitedConn{Conn: c, l: l, state: http.StateNew, since: l.now()}
		l.mu.Lock()
		var victim *limitedConn
		if len(l.conns) >= l.max {
			if victim = l.victimLocked(); victim == nil {
				l.mu.Unlock()
				if !l.TLS {
					_ = c.SetWriteDeadline(time.Now().Add(time.Second))
					_, _ = c.Write([]byte(refusal))
				}
				_ = c.Close()
				l.closed(closeRefused)
				continue
			}
			victim.reason = closeEvicted
			delete(l.conns, victim) // its place is the new one's now
		}
		l.conns[lc] = struct{}{}
		l.armLocked(lc)
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
		}
		if l.metrics != nil {
			l.metrics.ConnectionsOpen.Inc()
		}
		return lc, nil
	}
}

// victimLocked is the connection to close to make room: the untrusted one
// idle the longest, else the trusted one idle the longest; a new
// connection counts as idle from its opening once newConnGrace is past.
// nil when every connection is busy with a request.
func (l *ConnLimiter) victimLocked() *limitedConn {
	now := l.now()
	var best *limitedConn
	for c := range l.conns {
		switch {
		case c.state == http.StateIdle:
		case c.state == http.StateNew && now.Sub(c.since) >= newConnGrace:
		default:
			continue
		}
		if best == nil || (best.trusted && !c.trusted) || (best.trusted == c.trusted && c.since.Before(best.since)) {
			best = c
		}
	}
	return best
}

// armLocked starts the untrusted idle timeout of c, in state new or idle.
func (l *ConnLimiter) armLocked(c *limitedConn) {
	c.gen++
	if c.trusted || l.untrusted <= 0 {
		return
	}
	gen := c.gen
	c.timer = time.AfterFunc(l.untrusted, func() {
		l.mu.Lock()
		idle := c.gen == gen && !c.trusted && (c.state == http.StateNew || c.state == http.StateIdle)
		if idle {
			c.reason = closeUntrustedIdle
		}
		l.mu.Unlock()
		if idle {
			_ = c.Close()
		}
	})
}

// disarmLocked stops c's untrusted idle timeout.
func (c *limitedConn) disarmLocked() {
	c.gen++
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
}

// ConnState is the http.Server's ConnState hook: it follows which
// connections are idle.
func (l *ConnLimiter) ConnState(nc net.Conn, s http.ConnState) {
	c, ok := limited(nc)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.state == s {
		return
	}
	c.state = s
	c.disarmLocked()
	if s == http.StateIdle {
		c.since = l.now()
		l.armLocked(c)
	}
}

// ConnContext is the http.Server's ConnContext hook: it lets Trust find a
// request's connection.
func (l *ConnLimiter) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc, ok := limited(c); ok {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

type connKey struct{}

// limited is the limiter's connection beneath c: c itself, or the
// connection a TLS connection runs on (with ServeTLS the server's hooks
// get the *tls.Conn).
func limited(c net.Conn) (*limitedConn, bool) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	return lc, ok
}

// Trust marks the connection of a request (of a server on a ConnLimiter)
// as one that sent a valid signature or API token: it is no longer closed
// for the untrusted idle timeout, and is closed last to make room.
func Trust(ctx context.Context) {
	c, ok := ctx.Value(connKey{}).(*limitedConn)
	if !ok {
		return
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if !c.trusted {
		c.trusted = true
		c.disarmLocked()
	}
}

// Close closes the connection once, counting it by the reason it was
// closed for.
func (c *limitedConn) Close() error {
	c.closing.Do(func() {
		l := c.l
		l.mu.Lock()
		c.disarmLocked()
		reason := c.reason
		delete(l.conns, c)
		l.mu.Unlock()
		c.err = c.Conn.Close()
		if l.metrics != nil {
			l.metrics.ConnectionsOpen.Dec()
		}
		l.closed(reason)
	})
	return c.err
}

func (l *ConnLimiter) closed(reason string) {
	if l.metrics == nil {
		return
	}
	if reason == "" {
		reason = closeOther
	}
	l.metrics.ConnectionsClosed.WithLabelValues(reason).Inc()
}

// Open is how many connections are open.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// CloseWrite half-closes the connection when the one beneath can, as
// net/http does after an answer to a request it refuses unread (431,
// …), so the client reads the answer before the connection ends.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
