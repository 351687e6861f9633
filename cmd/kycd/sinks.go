package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/sink/httpsink"
	"github.com/kycd/kycd/sink/logsink"
	"github.com/kycd/kycd/sink/natssink"
)

const settingSinkSecret = "sink_secret"

// checkSink validates a --sink value's form, naming the fix.
func checkSink(spec string) error {
	kind, target, _ := strings.Cut(spec, "=")
	switch kind {
	case "log":
		if target == "" {
			return nil
		}
	case "http":
		if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return nil
		}
	case "nats":
		if u, err := url.Parse(target); err == nil && u.Scheme == "nats" && u.Host != "" && u.Query().Get("subject") != "" {
			return nil
		}
	}
	return fmt.Errorf("--sink %q: want http=URL, nats=nats://HOST:PORT?subject=PREFIX or log", kycd.SinkLabel(spec))
}

// sinkNames returns the configured sinks, log when none is.
func (e *env) sinkNames() []string {
	if len(e.cfg.Sinks) == 0 {
		return []string{"log"}
	}
	return e.cfg.Sinks
}

// openSinks connects every configured sink. The returned closer releases
// them.
func (e *env) openSinks(ctx context.Context, store kycd.Store) (map[string]kycd.Sink, func(), error) {
	sinks := map[string]kycd.Sink{}
	var closers []io.Closer
	closeAll := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	for _, spec := range e.sinkNames() {
		kind, target, _ := strings.Cut(spec, "=")
		switch kind {
		case "log":
			sinks[spec] = logsink.New(e.stdout)
		case "http":
			secret, err := e.sinkSecret(ctx, store)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			s, err := httpsink.New(target, secret, &http.Client{}, nil)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("--sink-secret: %w", err)
			}
			sinks[spec] = s
		case "nats":
			s, err := natssink.Open(ctx, target)
			if err != nil {
				closeAll()
				return nil, nil, fmt.Errorf("--sink %s: %w", kycd.SinkLabel(spec), err)
			}
			sinks[spec] = s
			closers = append(closers, s)
		default:
			closeAll()
			return nil, nil, checkSink(spec)
		}
	}
	return sinks, closeAll, nil
}

// sinkSecret is the configured Standard Webhooks secret, or the one kycd
// generated and kept on first need.
func (e *env) sinkSecret(ctx context.Context, store kycd.Store) (string, error) {
	if e.cfg.SinkSecret != "" {
		return e.cfg.SinkSecret, nil
	}
	b := make([]byte, 32)
	rand.Read(b)
	return e.generated(ctx, store, settingSinkSecret, "a notification signing secret", "--sink-secret / KYCD_SINK_SECRET",
		"whsec_"+base64.StdEncoding.EncodeToString(b))
}

// guidance is the built-in guidance with the merchant's file over it.
func (e *env) guidance() (kycd.Guidance, error) {
	g := kycd.DefaultGuidance()
	if e.cfg.GuidanceFile == "" {
		return g, nil
	}
	b, err := os.ReadFile(e.cfg.GuidanceFile)
	if err != nil {
		return nil, fmt.Errorf("--guidance: %w", err)
	}
	var over kycd.Guidance
	if err := json.Unmarshal(b, &over); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("--guidance %s: not JSON at byte %d: %v; want an object of reason code to sentence", e.cfg.GuidanceFile, se.Offset, err)
		}
		return nil, fmt.Errorf("--guidance %s: want a JSON object of reason code to sentence, e.g. {\"EXPIRED_DOCUMENT\": \"…\"}: %v", e.cfg.GuidanceFile, err)
	}
	return g.Merge(over), nil
}
