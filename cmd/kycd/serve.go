package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/dispatch"
	"github.com/kycd/kycd/ingest"
	"github.com/kycd/kycd/ralio"
	"github.com/kycd/kycd/server"
)

// Keys of the settings that kycd generates on first start.
const (
	settingRalioSecret = "ralio_secret"
	settingAdminToken  = "admin_token"
)

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 30 * time.Second

// shutdownDrainProjection bounds how long shutdown projects what was
// acknowledged; what is left is projected at the next start.
const shutdownDrainProjection = 10 * time.Second

func serveCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Receive Ralio webhooks and serve the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serve(cmd.Context())
		},
	}
}

func (e *env) logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if e.cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(e.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(e.stderr, opts))
}

func (e *env) serve(ctx context.Context) error {
	cfg := e.cfg
	if !isLoopback(cfg.Addr) && cfg.AdminToken == "" {
		return fmt.Errorf("--addr %s is reachable from other machines, so the API needs an admin token you chose: set --admin-token or KYCD_ADMIN_TOKEN (e.g. KYCD_ADMIN_TOKEN=$(openssl rand -hex 32))", cfg.Addr)
	}
	log := e.logger()
	metrics := server.NewMetrics()
	store, err := e.openStore(ctx, false)
	if err != nil {
		return err
	}
	defer store.Close()

	secrets := cfg.RalioSecrets
	if len(secrets) == 0 {
		secret, err := e.generated(ctx, store, settingRalioSecret, "a Ralio webhook secret", "--ralio-secret / KYCD_RALIO_SECRETS", randomToken())
		if err != nil {
			return err
		}
		secrets = []string{secret}
	}
	token := cfg.AdminToken
	if token == "" {
		if token, err = e.generated(ctx, store, settingAdminToken, "an admin token", "--admin-token / KYCD_ADMIN_TOKEN", randomToken()); err != nil {
			return err
		}
	}
	verifier, err := ralio.NewVerifier(secrets...)
	if err != nil {
		return fmt.Errorf("--ralio-secret: %w", err)
	}
	guide, err := e.guidance()
	if err != nil {
		return err
	}
	sinks, closeSinks, err := e.openSinks(ctx, store)
	if err != nil {
		return err
	}
	defer closeSinks()
	dispatch.RegisterOutboxDepth(metrics.Registry, store)
	dispatcher, err := dispatch.New(dispatch.Options{
		Store:   store,
		Sinks:   sinks,
		Backoff: dispatch.Backoff{Base: cfg.RetryBase, Cap: cfg.RetryCap, MaxAttempts: cfg.RetryMaxAttempts, MaxAge: cfg.RetryMaxAge},
		Logger:  log,
		Metrics: dispatch.NewMetrics(metrics.Registry),
	})
	if err != nil {
		return err
	}
	in, err := ingest.New(ctx, store, ingest.Options{
		Sinks:      e.sinkNames(),
		Guide:      guide.For,
		Logger:     log,
		Notified:   dispatcher.Wake,
		Metrics:    metrics.IngestMetrics(),
		MaxBacklog: cfg.MaxBacklog,
	})
	if err != nil {
		return err
	}
	defer in.Close()
	metrics.RegisterBacklog(in)
	var draining atomic.Bool
	handler := server.New(server.Options{
		Logger:         log,
		Store:          store,
		Verifier:       verifier,
		Ingester:       in,
		Metrics:        metrics,
		AdminToken:     token,
		MaxBody:        cfg.MaxBody,
		BodyBudget:     cfg.BodyBudget,
		WakeDispatcher: dispatcher.Wake,
		Draining:       &draining,
	})

	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", cfg.Addr, err)
	}
	ln := &closeOnce{Listener: l}
	// A client without the secret may hold a connection, never kycd's
	// memory or the places of signed deliveries: headers are small and
	// come in 10 s; the webhook gives its body 5 s of its own
	// (server.DefaultBodyTimeout); other requests have no body worth
	// waiting for. An answer may take the webhook's 20 s store bound and
	// still be written before WriteTimeout.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	fmt.Fprintf(e.stdout, "kycd listening on http://%s (webhook: POST /webhooks/ralio)\n", ln.Addr())
	log.Info("serving", "addr", ln.Addr().String(), "database", redactDatabase(cfg.Database))

	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var wg sync.WaitGroup
	wg.Go(func() { purgeLoop(bg, log, store, cfg.Retention) })
	wg.Go(func() { dispatcher.Run(bg) })
	wg.Go(func() { in.Run(bg) })

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopBg()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// A request whose bytes are on their way when its connection closes
	// gets no answer, and Ralio cannot know whether kycd took the event. So
	// new connections are refused at once (nothing was sent on them), and
	// for a while the requests on open connections are answered 503, which
	// Ralio retries, with Connection: close; /readyz fails so a load
	// balancer stops sending. Only connections idle that whole while are
	// then closed under their clients.
	draining.Store(true)
	ln.Close()
	log.Info("shutting down: answering 503 while draining", "drain", cfg.Drain)
	time.Sleep(cfg.Drain)
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Then the log appender finishes the batch it is committing, the
	// projector its transaction (what is left is projected at the next
	// start), and the dispatcher stops claiming: sends under way finish
	// within their timeout and are recorded before the store closes.
	in.Close()
	dctx, cancelDrain := context.WithTimeout(context.Background(), shutdownDrainProjection)
	if _, derr := in.Drain(dctx); derr != nil {
		log.Warn("shutting down before every event was projected; the next start projects the rest", "err", derr)
	}
	cancelDrain()
	stopBg()
	wg.Wait()
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// closeOnce is a listener that may be closed more than once: at the start
// of the drain, then by the server's shutdown.
type closeOnce struct {
	net.Listener
	once sync.Once
	err  error
}

func (l *closeOnce) Close() error {
	l.once.Do(func() { l.err = l.Listener.Close() })
	return l.err
}

// generated returns the stored value of key, generating, keeping and
// printing it once on the first start (as `stripe listen` does).
func (e *env) generated(ctx context.Context, store kycd.Store, key, what, howToSet, value string) (string, error) {
	v, created, err := store.InitSetting(ctx, key, value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if created {
		fmt.Fprintf(e.stdout, "Generated %s (kept in the database, shown only this once; set %s to choose your own):\n  %s\n", what, howToSet, v)
	}
	return v, nil
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// redactDatabase keeps a password in a database URL out of the logs.
func redactDatabase(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		return u.Redacted()
	}
	return v
}

// purgeLoop drops raw bodies older than the retention, hourly.
func purgeLoop(ctx context.Context, log *slog.Logger, store kycd.Store, retention time.Duration) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := store.Purge(ctx, time.Now().Add(-retention)); err != nil {
			if ctx.Err() == nil {
				log.Warn("retention purge failed", "err", err)
			}
		} else if n > 0 {
			log.Info("retention purge", "bodies", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
