// Package httpsink delivers notifications to the merchant's HTTP endpoint,
// signed the Standard Webhooks way so the receiver can verify them with any
// Standard Webhooks library.
package httpsink

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/kycd/kycd"
)

// Sink POSTs notifications to one URL.
type Sink struct {
	url    string
	client *http.Client
	signer *standardwebhooks.Webhook
	now    func() time.Time
}

// New returns a sink for url signing with secret (whsec_ + base64). now is
// the clock of webhook-timestamp (time.Now when nil).
func New(url, secret string, client *http.Client, now func() time.Time) (*Sink, error) {
	if !strings.HasPrefix(secret, "whsec_") {
		return nil, fmt.Errorf("httpsink: the secret must have the Standard Webhooks form whsec_<base64>")
	}
	signer, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return nil, fmt.Errorf("httpsink: the secret is not whsec_<base64>: %w", err)
	}
	if client == nil {
		client = &http.Client{}
	}
	// A redirect would turn the POST into a GET; better to see it fail.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if now == nil {
		now = time.Now
	}
	return &Sink{url: url, client: &c, signer: signer, now: now}, nil
}

// Send POSTs m. 2xx is delivered; 408, 429 (with its Retry-After), 5xx,
// redirects, timeouts and network errors are retryable; any other 4xx is
// permanent.
func (s *Sink) Send(ctx context.Context, m kycd.Message) error {
	ts := s.now()
	sig, err := s.signer.Sign(m.ID, ts, m.Payload)
	if err != nil {
		return &kycd.SinkError{Permanent: true, Err: fmt.Errorf("sign: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(m.Payload))
	if err != nil {
		return &kycd.SinkError{Permanent: true, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kycd")
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, sig)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 || code < 400:
		return &kycd.SinkError{StatusCode: code, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.now()), Err: fmt.Errorf("%s answered %s", kycd.SinkLabel("http="+s.url), resp.Status)}
	default:
		return &kycd.SinkError{Permanent: true, StatusCode: code, Err: fmt.Errorf("%s refused it: %s", kycd.SinkLabel("http="+s.url), resp.Status)}
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs > 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
