// Package reconcile catches the events Ralio never delivered: it compares
// kycd's sessions with Ralio's REST API and appends the transitions kycd
// missed to the event log, where the projector applies them through the
// same rules as webhooks (recorded with source "reconciliation").
package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"golang.org/x/time/rate"
)

// Client reads Ralio's REST API for KYC sessions (ralio/CONTRACT.md, last
// section). It paces its requests and retries 429, 5xx and network errors
// with backoff, honouring Retry-After up to a minute. It follows no
// redirect to another host, and reads every answer as a stream within
// fixed limits (maxItems and the other limits below).
type Client struct {
	BaseURL string // e.g. https://api.ralio.example
	APIKey  string
	HTTP    *http.Client
	// Limiter paces requests; nil for no limit.
	Limiter *rate.Limiter
	// Attempts is how many times a request is tried (6 when 0).
	Attempts int
	// Backoff is the first wait between tries, doubled each time (500 ms
	// when 0) and capped at 30 s.
	Backoff time.Duration
	// RequestTimeout bounds each request, its answer read whole (30 s
	// when 0); a request that times out is retried.
	RequestTimeout time.Duration
	// Sleep waits between tries; a test makes it instant. time.Sleep-like,
	// but stops with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Session is one of a user's sessions as Ralio lists it.
type Session struct {
	ID        string          `json:"id"`
	State     json.RawMessage `json:"state"` // a name (REJECTED) or Ralio's numeric code (5)
	Type      string          `json:"type"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
	ExpiresAt string          `json:"expiresAt"`
}

// Check is a session's check with its refused reasons.
type Check struct {
	ID             string          `json:"id"`
	Type           string          `json:"type"`
	State          json.RawMessage `json:"state"`
	RefusedReasons []Reason        `json:"refused_reasons"`
}

// Reason is why a check was refused.
type Reason struct {
	Type        string `json:"type"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	MappedError *struct {
		Category string `json:"category"`
	} `json:"mappedError,omitempty"`
}

// StateLog is one entry of a session's state history.
type StateLog struct {
	ID        string          `json:"id"`
	NewState  json.RawMessage `json:"new_state"`
	CreatedAt string          `json:"created_at"`
}

// Limits on what one user's answers may hold, so that whatever Ralio
// answers, reconciliation's memory stays bounded (decisions.md, "Hostile
// input and operator mistakes"). An answer is decoded as a stream: only
// the items kycd keeps are held, each in a small struct.
const (
	// maxAnswer is the most bytes of one answer read.
	maxAnswer = 16 << 20
	// pageSize is the page size asked for: Ralio's largest.
	pageSize = 100
	// maxItems is the most items of one answer's list (a page, a
	// session's checks or history): ten times the page size asked for.
	maxItems = 1000
	// maxElements is the most array elements one answer's items hold in
	// all, their nested lists (a check's refused reasons) included.
	maxElements = 10000
	// maxPages is the most pages of one user's sessions read (10,000
	// sessions); fewer when Ralio's first page announces fewer.
	maxPages = 100
	// maxField is the longest value kept of a session's id, type, state
	// and times.
	maxField = 256
	// maxRetryAfter is the longest Retry-After honoured.
	maxRetryAfter = time.Minute
	// defaultRequestTimeout is a request's deadline when RequestTimeout
	// is 0.
	defaultRequestTimeout = 30 * time.Second
)

// Sessions lists a user's sessions, every page: at most the pages Ralio's
// first page announces (numPages, else total), one more for a session
// created meanwhile, and never more than maxPages nor maxPages × pageSize
// sessions. A `next` beyond that is an error, not a reason to go on.
func (c *Client) Sessions(ctx context.Context, userID string) ([]Session, error) {
	var all []Session
	limit, first := maxPages, pagination{}
	for page := 1; ; page++ {
		var p pagination
		path := fmt.Sprintf("/api/v1/account/users/%s/identity-verifications?page=%d&pageSize=%d", url.PathEscape(userID), page, pageSize)
		n := 0
		err := c.get(ctx, path, "data", func(item []byte) error {
			var s Session
			if err := json.Unmarshal(item, &s); err != nil {
				return err
			}
			if len(s.ID) > maxField || len(s.State) > maxField || len(s.Type) > maxField || len(s.CreatedAt) > maxField ||
				len(s.UpdatedAt) > maxField || len(s.ExpiresAt) > maxField {
				return fmt.Errorf("a session with a field longer than %d bytes", maxField)
			}
			if len(all) == maxPages*pageSize {
				return fmt.Errorf("more than %d sessions", maxPages*pageSize)
			}
			n++
			all = append(all, s)
			return nil
		}, map[string]any{"pagination": &p})
		if err != nil {
			return nil, err
		}
		if page == 1 {
			first = p
			announced := p.NumPages
			if announced <= 0 && p.Total > 0 {
				announced = (p.Total + pageSize - 1) / pageSize
			}
			if announced > maxPages {
				return nil, fmt.Errorf("GET %s: Ralio announces %d pages of sessions (total %d); kycd reads at most %d pages of %d", path, announced, p.Total, maxPages, pageSize)
			}
			if announced > 0 {
				limit = announced + 1
			}
		}
		if p.Next == nil || n == 0 {
			return all, nil
		}
		if page >= limit {
			return nil, fmt.Errorf("GET %s: Ralio's pagination goes on (next %d) past the %d pages its first page announced (numPages %d, total %d): stopped",
				path, *p.Next, limit-1, first.NumPages, first.Total)
		}
	}
}

// pagination is the pagination object of a list (CONTRACT.md).
type pagination struct {
	Page     int  `json:"page"`
	NumPages int  `json:"numPages"`
	Total    int  `json:"total"`
	Next     *int `json:"next"`
}

// Checks returns a session's checks.
func (c *Client) Checks(ctx context.Context, userID, sessionID string) ([]Check, error) {
	var out []Check
	err := c.get(ctx, fmt.Sprintf("/api/v1/account/users/%s/identity-verifications/%s/checks", url.PathEscape(userID), url.PathEscape(sessionID)),
		"checks", func(item []byte) error {
			var ch Check
			if err := json.Unmarshal(item, &ch); err != nil {
				return err
			}
			out = append(out, ch)
			return nil
		}, nil)
	return out, err
}

// History returns a session's state history.
func (c *Client) History(ctx context.Context, userID, sessionID string) ([]StateLog, error) {
	var out []StateLog
	err := c.get(ctx, fmt.Sprintf("/api/v1/account/users/%s/identity-verifications/%s/state-history", url.PathEscape(userID), url.PathEscape(sessionID)),
		"logs", func(item []byte) error {
			var l StateLog
			if err := json.Unmarshal(item, &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		}, nil)
	return out, err
}

// ErrNotFound is Ralio answering 404: it does not know the user or session.
var ErrNotFound = errors.New("not found in Ralio")

// ErrUnauthorized is Ralio refusing the API key (401, 403): every other
// request would be refused too.
var ErrUnauthorized = errors.New("refused by Ralio: check --ralio-api-key")

// get fetches path, retrying what may pass, and hands each item of the
// answer's list field to each; fields are other top-level fields decoded
// whole (small objects). each sees the items of the answer that succeeds
// only, once it is read whole: an attempt that fails midway leaves nothing
// behind.
func (c *Client) get(ctx context.Context, path, list string, each func(item []byte) error, fields map[string]any) error {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 6
	}
	wait := c.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	for try := 1; ; try++ {
		var items [][]byte
		retryAfter, err := c.getOnce(ctx, path, list, func(item []byte) error {
			items = append(items, item)
			return nil
		}, fields)
		var re *retryable
		if err == nil {
			for _, it := range items {
				if err := each(it); err != nil {
					return fmt.Errorf("GET %s: Ralio's answer is not what its API documents: %w", path, err)
				}
			}
			return nil
		}
		if !errors.As(err, &re) || try == attempts || ctx.Err() != nil {
			return err
		}
		d := max(wait, retryAfter)
		// A wait that would outlast the run is not waited: the run's
		// deadline counts Retry-After too.
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < d {
			return fmt.Errorf("%w; not retried: the next try, %s later, would pass the run's deadline", err, d)
		}
		if err := c.sleep(ctx, d); err != nil {
			return err
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// retryable marks a failure worth another try.
type retryable struct{ err error }

func (e *retryable) Error() string { return e.err.Error() }
func (e *retryable) Unwrap() error { return e.err }

// redirectError is a redirect to another scheme or host, not followed: the
// API key would go along, and the answer could not be trusted.
type redirectError struct{ to *url.URL }

func (e *redirectError) Error() string {
	return fmt.Sprintf("Ralio's API redirected to %s://%s, another host than --ralio-api-url's: not followed", e.to.Scheme, e.to.Host)
}

// checkRedirect follows redirects within the request's own scheme and
// host only.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if first := via[0].URL; req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		return &redirectError{req.URL}
	}
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	return nil
}

func (c *Client) httpClient() *http.Client {
	hc := http.Client{}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = checkRedirect
	return &hc
}

// getOnce is one try of get.
func (c *Client) getOnce(ctx context.Context, path, list string, each func(item []byte) error, fields map[string]any) (time.Duration, error) {
	if c.Limiter != nil {
		if err := c.Limiter.Wait(ctx); err != nil {
			return 0, err
		}
	}
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = defaultRequestTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("Accept", "application/json")
	timedOut := func(err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if rctx.Err() != nil {
			return &retryable{fmt.Errorf("GET %s: no complete answer within %s", path, timeout)}
		}
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var redirect *redirectError
		if errors.As(err, &redirect) {
			return 0, fmt.Errorf("GET %s: %w", path, redirect)
		}
		// The URL holds no secret (the key is a header), but keep errors
		// short: the method and path, not the whole chain.
		return 0, timedOut(&retryable{fmt.Errorf("GET %s: %w", path, unwrapURLError(err))})
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		body := &readErr{r: resp.Body, left: maxAnswer}
		if err := decodeList(body, list, each, fields); err != nil {
			if errors.Is(body.err, errTooLarge) {
				return 0, fmt.Errorf("GET %s: %w", path, errTooLarge)
			}
			if body.err != nil {
				return 0, timedOut(&retryable{fmt.Errorf("GET %s: reading the answer: %w", path, body.err)})
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errors.New("the answer ends before its JSON does")
			}
			return 0, fmt.Errorf("GET %s: Ralio's answer is not what its API documents: %w", path, err)
		}
		return 0, nil
	case resp.StatusCode == http.StatusNotFound:
		return 0, fmt.Errorf("GET %s: %w", path, ErrNotFound)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), &retryable{fmt.Errorf("GET %s: status %d", path, resp.StatusCode)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return 0, fmt.Errorf("GET %s: status %d: %w", path, resp.StatusCode, ErrUnauthorized)
	}
	return 0, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
}

// readErr reads at most left bytes of r (errTooLarge beyond) and
// remembers its error other than io.EOF: a failure to read, worth a retry,
// rather than an answer that does not decode.
type readErr struct {
	r    io.Reader
	left int64
	err  error
}

var errTooLarge = fmt.Errorf("the answer of Ralio's API is larger than %d MiB: not read further", maxAnswer>>20)

func (r *readErr) Read(p []byte) (int, error) {
	if r.left <= 0 {
		r.err = errTooLarge
		return 0, r.err
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.r.Read(p)
	r.left -= int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// decodeList decodes the JSON object of r as a stream: each element of
// its array field list goes to each as a copy of its bytes, at most
// maxItems of them and maxElements array elements in all; the fields named
// in fields are decoded into their values; anything else is skipped
// without being kept. r is read up to maxAnswer bytes.
func decodeList(r io.Reader, list string, each func(item []byte) error, fields map[string]any) error {
	dec := jsontext.NewDecoder(r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	if err := readDelim(dec, '{'); err != nil {
		return err
	}
	items, elements := 0, 0
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		name := tok.String()
		switch {
		case name == list && dec.PeekKind() == '[':
			if err := readDelim(dec, '['); err != nil {
				return err
			}
			for dec.PeekKind() != ']' {
				if items++; items > maxItems {
					return fmt.Errorf("%q holds more than %d items", list, maxItems)
				}
				v, err := dec.ReadValue()
				if err != nil {
					return err
				}
				n, err := arrayElements(v)
				if err != nil {
					return err
				}
				if elements += 1 + n; elements > maxElements {
					return fmt.Errorf("%q holds more than %d array elements in all", list, maxElements)
				}
				if err := each(bytes.Clone(v)); err != nil {
					return err
				}
			}
			if err := readDelim(dec, ']'); err != nil {
				return err
			}
		case fields[name] != nil:
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if len(v) > 64<<10 {
				return fmt.Errorf("%q is %d bytes long", name, len(v))
			}
			if err := json.Unmarshal(v, fields[name]); err != nil {
				return fmt.Errorf("%q: %w", name, err)
			}
		default:
			if err := dec.SkipValue(); err != nil {
				return err
			}
		}
	}
	return readDelim(dec, '}')
}

// readDelim reads one token, which must be the delimiter want.
func readDelim(dec *jsontext.Decoder, want jsontext.Kind) error {
	tok, err := dec.ReadToken()
	if err != nil {
		return err
	}
	if tok.Kind() != want {
		return fmt.Errorf("%s where %s was expected", tok.Kind(), want)
	}
	return nil
}

// arrayElements counts the array elements nested in v, at any depth.
func arrayElements(v jsontext.Value) (int, error) {
	if !bytes.ContainsRune(v, '[') {
		return 0, nil
	}
	dec := jsontext.NewDecoder(bytes.NewReader(v), jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	n := 0
	for {
		depth, next := dec.StackDepth(), dec.PeekKind()
		if depth > 0 && next != ']' && next != 0 {
			if kind, _ := dec.StackIndex(depth); kind == '[' {
				n++ // an element begins
			}
		}
		if _, err := dec.ReadToken(); errors.Is(err, io.EOF) {
			return n, nil
		} else if err != nil {
			return n, err
		}
	}
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After of seconds, at most maxRetryAfter;
// anything else is 0.
func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(min(n, int(maxRetryAfter/time.Second))) * time.Second
	}
	return 0
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
