// Package httpsink delivers notifications to the merchant's HTTP endpoint,
// signed the Standard Webhooks way so the receiver can verify them with any
// Standard Webhooks library.
package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.opentelemetry.io/otel/propagation"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/tracing"
)

// Sink POSTs notifications to one URL.
type Sink struct {
	url     string
	shown   string // url as kycd.RedactURL shows it, for errors
	client  *http.Client
	signers []*standardwebhooks.Webhook
	now     func() time.Time
}

// New returns a sink for url signing with every one of secrets (each
// whsec_ + base64): the webhook-signature header then carries one v1
// signature per secret, so a receiver holding either the old or the new
// secret of a rotation verifies every delivery. now is the clock of
// webhook-timestamp (time.Now when nil).
func New(url string, secrets []string, client *http.Client, now func() time.Time) (*Sink, error) {
	if len(secrets) == 0 {
		return nil, errors.New("httpsink: at least one secret is required")
	}
	s := &Sink{url: url, shown: kycd.RedactURL(url), now: now}
	for i, secret := range secrets {
		if !strings.HasPrefix(secret, "whsec_") {
			return nil, fmt.Errorf("httpsink: secret %d must have the Standard Webhooks form whsec_<base64>", i+1)
		}
		signer, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return nil, fmt.Errorf("httpsink: secret %d is not whsec_<base64>", i+1)
		}
		s.signers = append(s.signers, signer)
	}
	if client == nil {
		client = &http.Client{}
	}
	// A redirect would turn the POST into a GET; better to see it fail.
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s.client = &c
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Send POSTs m. 2xx is delivered; 408, 429 (with its Retry-After), 5xx,
// redirects, timeouts and network errors are retryable; 410 Gone pauses
// the sink; any other 4xx is permanent. No error names the URL's
// credentials.
func (s *Sink) Send(ctx context.Context, m kycd.Message) error {
	ts := s.now()
	sigs := make([]string, len(s.signers))
	for i, signer := range s.signers {
		sig, err := signer.Sign(m.ID, ts, m.Payload)
		if err != nil {
			return &kycd.SinkError{Permanent: true, Err: fmt.Errorf("sign: %w", err)}
		}
		sigs[i] = sig
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(m.Payload))
	if err != nil {
		return &kycd.SinkError{Permanent: true, Err: fmt.Errorf("POST %s: %v", s.shown, kycd.RedactText(err.Error()))}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "kycd")
	req.Header.Set(standardwebhooks.HeaderWebhookID, m.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(ts.Unix(), 10))
	// Several signatures, space-separated, as the Standard Webhooks
	// specification has it for key rotation.
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, strings.Join(sigs, " "))
	// The attempt's span (when tracing is on) as W3C traceparent, so the
	// receiver continues the webhook's trace; nothing without one.
	tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := s.client.Do(req)
	if err != nil {
		// Go's client writes the URL, query and all, into its errors: the
		// cause is kept, the URL is named as shown.
		return fmt.Errorf("POST %s: %w", s.shown, unwrapURLError(err))
	}
	// The start of the answer is kept for the attempt's record (a
	// failure's body says why); the rest is drained so the connection is
	// reused. The answer is the status code, whatever the body does.
	head, _ := io.ReadAll(io.LimitReader(resp.Body, kycd.ResponseBodyLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := resp.StatusCode
	body := string(head)
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusGone:
		return &kycd.SinkError{Pause: true, StatusCode: code, Body: body, Err: fmt.Errorf("%s answered %s: the endpoint is gone", s.shown, resp.Status)}
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 || code < 400:
		return &kycd.SinkError{StatusCode: code, Body: body, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), s.now()), Err: fmt.Errorf("%s answered %s", s.shown, resp.Status)}
	default:
		return &kycd.SinkError{Permanent: true, StatusCode: code, Body: body, Err: fmt.Errorf("%s refused it: %s", s.shown, resp.Status)}
	}
}

// unwrapURLError returns the cause of a *url.Error (whose URL the message
// is about to name anyway), so the message says it once.
func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok && ue.Err != nil {
		return ue.Err
	}
	return err
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
