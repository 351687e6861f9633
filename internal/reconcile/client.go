// Package reconcile catches the events Ralio never delivered: it compares
// kycd's sessions with Ralio's REST API and appends the transitions kycd
// missed to the event log, where the projector applies them through the
// same rules as webhooks (recorded with source "reconciliation").
package reconcile

import (
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

	"golang.org/x/time/rate"
)

// Client reads Ralio's REST API for KYC sessions (ralio/CONTRACT.md, last
// section). It paces its requests and retries 429, 5xx and network errors
// with backoff, honouring Retry-After.
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

// Sessions lists a user's sessions, every page.
func (c *Client) Sessions(ctx context.Context, userID string) ([]Session, error) {
	var all []Session
	for page := 1; ; page++ {
		var resp struct {
			Data       []Session `json:"data"`
			Pagination struct {
				Page     int  `json:"page"`
				NumPages int  `json:"numPages"`
				Next     *int `json:"next"`
			} `json:"pagination"`
		}
		path := fmt.Sprintf("/api/v1/account/users/%s/identity-verifications?page=%d&pageSize=100", url.PathEscape(userID), page)
		if err := c.get(ctx, path, &resp); err != nil {
			return nil, err
		}
		all = append(all, resp.Data...)
		if resp.Pagination.Next == nil || len(resp.Data) == 0 || page >= resp.Pagination.NumPages {
			return all, nil
		}
	}
}

// Checks returns a session's checks.
func (c *Client) Checks(ctx context.Context, userID, sessionID string) ([]Check, error) {
	var resp struct {
		Checks []Check `json:"checks"`
	}
	err := c.get(ctx, fmt.Sprintf("/api/v1/account/users/%s/identity-verifications/%s/checks", url.PathEscape(userID), url.PathEscape(sessionID)), &resp)
	return resp.Checks, err
}

// History returns a session's state history.
func (c *Client) History(ctx context.Context, userID, sessionID string) ([]StateLog, error) {
	var resp struct {
		Logs []StateLog `json:"logs"`
	}
	err := c.get(ctx, fmt.Sprintf("/api/v1/account/users/%s/identity-verifications/%s/state-history", url.PathEscape(userID), url.PathEscape(sessionID)), &resp)
	return resp.Logs, err
}

// ErrNotFound is Ralio answering 404: it does not know the user or session.
var ErrNotFound = errors.New("not found in Ralio")

// get fetches path into v, retrying what may pass.
func (c *Client) get(ctx context.Context, path string, v any) error {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 6
	}
	wait := c.Backoff
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	var err error
	for try := 1; ; try++ {
		var retryAfter time.Duration
		retryAfter, err = c.getOnce(ctx, path, v)
		var re *retryable
		if err == nil || !errors.As(err, &re) || try == attempts || ctx.Err() != nil {
			return err
		}
		d := max(wait, retryAfter)
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

func (c *Client) getOnce(ctx context.Context, path string, v any) (time.Duration, error) {
	if c.Limiter != nil {
		if err := c.Limiter.Wait(ctx); err != nil {
			return 0, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.BaseURL, "/")+path, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		// The URL holds no secret (the key is a header), but keep errors
		// short: the method and path, not the whole chain.
		return 0, &retryable{fmt.Errorf("GET %s: %w", path, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, &retryable{fmt.Errorf("GET %s: %w", path, err)}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(body, v); err != nil {
			return 0, fmt.Errorf("GET %s: Ralio's answer is not what its API documents: %w", path, err)
		}
		return 0, nil
	case resp.StatusCode == http.StatusNotFound:
		return 0, fmt.Errorf("GET %s: %w", path, ErrNotFound)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return retryAfter(resp.Header.Get("Retry-After")), &retryable{fmt.Errorf("GET %s: status %d", path, resp.StatusCode)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return 0, fmt.Errorf("GET %s: status %d: check --ralio-api-key", path, resp.StatusCode)
	}
	return 0, fmt.Errorf("GET %s: status %d", path, resp.StatusCode)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryAfter reads a Retry-After of seconds; anything else is 0.
func retryAfter(v string) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, 5*time.Minute)
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
