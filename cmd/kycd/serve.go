package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/dispatch"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/reconcile"
	"github.com/kycd/kycd/internal/server"
	"github.com/kycd/kycd/internal/tracing"
	"github.com/kycd/kycd/internal/watchdog"
	"github.com/kycd/kycd/ralio"
)

// settingRalioSecret keys the Ralio secret that kycd generates on first
// start. (The admin token is a token named admin: see adminToken.)
const settingRalioSecret = "ralio_secret"

// shutdownTimeout bounds how long in-flight requests may take to finish.
const shutdownTimeout = 30 * time.Second

// shutdownDrainProjection bounds how long shutdown projects what was
// acknowledged; what is left is projected at the next start.
const shutdownDrainProjection = 10 * time.Second

func serveCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Receive Ralio webhooks and serve the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return e.serve(cmd.Context())
		},
	}
	e.use(cmd, serveFlags...)
	return cmd
}

func (e *env) serve(ctx context.Context) (err error) {
	cfg := e.cfg
	log := e.logger()
	e.logging = true
	if err := cfg.checkServe(); err != nil {
		return err
	}
	var cert *certificate
	if cfg.TLSCert != "" {
		if cert, err = loadCertificate(cfg.TLSCert, cfg.TLSKey); err != nil {
			return err
		}
	}
	// Listen first: a taken port fails before a database is created or a
	// secret generated and printed.
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", cfg.Addr, err)
	}
	defer func() { _ = l.Close() }() // on the way out of a failed start; serving closes it itself
	for _, w := range cfg.weakSecrets() {
		log.Warn("weak secret: accepted only because --addr is a loopback address", "problem", w)
	}
	if !isLoopback(cfg.Addr) && cert == nil && len(cfg.trustedProxies) == 0 {
		log.Warn("plain HTTP on an address other machines reach: tokens, secrets and personal data cross the network unencrypted. "+
			"Serve HTTPS with --tls-cert and --tls-key, or put a TLS-terminating reverse proxy in front and name it with --trusted-proxies",
			"addr", cfg.Addr)
	}
	b := readBuild()
	traces, err := tracing.FromEnv(ctx, e.getenv, b.Version)
	if err != nil {
		return err
	}
	if traces.Enabled() {
		// The SDK's own complaints (an unreachable collector) go to
		// kycd's log, in its format, not to a line of their own.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { log.Warn("OpenTelemetry", "err", err) }))
		log.Info("OpenTelemetry traces on (OTEL_* variables)")
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := traces.Shutdown(sctx); err != nil {
			log.Warn("OpenTelemetry: spans not sent at shutdown", "err", err)
		}
	}()
	metrics := server.NewMetrics()
	store, err := e.openStore(ctx, migrating)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	release, err := store.(kycd.Serving).HoldServing(ctx)
	if kycd.ErrorCode(err) == kycd.ECONFLICT {
		return fmt.Errorf("kycd rebuild is rewriting the database of --database %s: start serve when it has finished", kycd.RedactURL(cfg.Database))
	}
	if err != nil {
		return err
	}
	defer func() { _ = release() }() // the lock ends with the process anyway
	if err := checkCoverage(ctx, store, cfg.Database); err != nil {
		return err
	}

	secrets := cfg.RalioSecrets
	if len(secrets) == 0 {
		secret, err := e.generated(ctx, log, store, settingRalioSecret, "a Ralio webhook secret", "--ralio-secret / KYCD_RALIO_SECRETS", randomToken(),
			"kycd secrets show prints it")
		if err != nil {
			return err
		}
		secrets = []string{secret}
	} else if err := e.checkStoredSecret(ctx, log, store, secrets); err != nil {
		return err
	}
	if err := e.adminToken(ctx, log, store); err != nil {
		return err
	}
	verifier, err := ralio.NewVerifier(secrets...)
	if err != nil {
		return fmt.Errorf("--ralio-secret: %w", err)
	}
	guide, err := e.guidance()
	if err != nil {
		return err
	}
	sinks, closeSinks, err := e.openSinks(ctx, log, store)
	if err != nil {
		return err
	}
	defer closeSinks()
	if err := e.registerSinks(ctx, log, store); err != nil {
		return err
	}
	dispatch.RegisterOutboxDepth(metrics.Registry, store)
	dispatch.RegisterSinkStates(metrics.Registry, &app.Service{Store: store})
	dispatch.RegisterOutboxAge(metrics.Registry, store, slices.Sorted(maps.Keys(sinks)))
	metrics.RegisterQuarantine(store)
	// Reconciliation's series are there from the start, even when serve
	// never reconciles (the interval says so), so "never ran" shows.
	reconcileMetrics := reconcile.NewMetrics(metrics.Registry)
	reconcileMetrics.Interval.Set(cfg.ReconcileEvery.Seconds())
	metrics.RegisterBuildInfo(b.Version, b.Revision, b.GoVersion)
	dispatcher, err := dispatch.New(dispatch.Options{
		Store:   store,
		Sinks:   sinks,
		Backoff: dispatch.Backoff{Base: cfg.RetryBase, Cap: cfg.RetryCap, MaxAttempts: cfg.RetryMaxAttempts, MaxAge: cfg.RetryMaxAge},
		Logger:  log,
		Metrics: dispatch.NewMetrics(metrics.Registry),
		Tracing: traces,
	})
	if err != nil {
		return err
	}
	in, err := ingest.New(ctx, store, ingest.Options{
		Sinks:      e.sinkRoutes(),
		Guide:      guide.For,
		Logger:     log,
		Notified:   dispatcher.Wake,
		Handoff:    dispatcher.Handoff,
		HandOver:   dispatcher.HandOver,
		Metrics:    metrics.IngestMetrics(),
		MaxBacklog: cfg.MaxBacklog,
		// The ordering rule: every process projecting one store must use
		// the same, or they would order a skewed event differently.
		MaxClockSkew: cfg.MaxClockSkew,
		Verifier:     verifier,
		Hold:         kycd.SignatureHold{MaxCount: cfg.HoldMaxCount, MaxBytes: cfg.HoldMaxBytes},
		Tracing:      traces,
	})
	if err != nil {
		return err
	}
	defer in.Close()
	metrics.RegisterBacklog(in)
	stalled, err := watchdog.New(watchdog.Options{
		Store:            store,
		Sinks:            e.sinkRoutes(),
		ReviewAlertAfter: cfg.ReviewAlertAfter,
		Logger:           log,
		Metrics:          watchdog.NewMetrics(metrics.Registry),
		Notified:         dispatcher.Wake,
		CaughtUp:         func(ctx context.Context) (bool, error) { return in.CaughtUp(ctx, 10*time.Second) },
	})
	if err != nil {
		return err
	}
	var draining atomic.Bool
	handler := server.New(server.Options{
		Logger:         log,
		Store:          store,
		Verifier:       verifier,
		Ingester:       in,
		Metrics:        metrics,
		Sinks:          e.sinkRoutes(),
		MaxBody:        cfg.MaxBody,
		BodyBudget:     cfg.BodyBudget,
		PeerBodyBudget: cfg.PeerBodyBudget,
		WakeDispatcher: dispatcher.Wake,
		Draining:       &draining,
		// The list answers by the watchdog's threshold.
		ReviewAlertAfter: cfg.ReviewAlertAfter,
		Guide:            guide.For,
		TrustedProxies:   cfg.trustedProxies,
		Tracing:          traces,
	})

	limiter := server.NewConnLimiter(l, maxConnections(cfg.MaxConnections), cfg.UntrustedIdle, metrics)
	limiter.TLS = cert != nil
	ln := &closeOnce{Listener: limiter}
	// A client without the secret may hold a connection, never kycd's
	// memory or the places of signed deliveries: headers are small and
	// come in 10 s; the webhook gives its body 5 s of its own
	// (server.DefaultBodyTimeout); other requests have no body worth
	// waiting for. An answer may take the webhook's 20 s store bound and
	// still be written before WriteTimeout. Connections are capped, the
	// idle ones closed first to make room, and idle ones that never sent
	// a valid signature or token are closed after --untrusted-idle-timeout
	// (the limiter): IdleTimeout is for Ralio's and API clients'.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       20 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ConnState:         limiter.ConnState,
		ConnContext:       limiter.ConnContext,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	scheme := "http"
	if cert != nil {
		scheme = "https"
		srv.TLSConfig = cert.config()
		describeCertificate(log, "serving HTTPS", cert.current.Load())
		cert.reloadOnHangup(bg, log)
	}
	// Banners go to stderr with the logs: stdout is the log sink's, one
	// notification per line, for whatever reads them. A JSON log stream
	// has the banner as a line of its own.
	banner := fmt.Sprintf("kycd listening on %s://%s (webhook: POST /webhooks/ralio)", scheme, ln.Addr())
	if e.jsonLogs() {
		log.Info(banner, "addr", ln.Addr().String())
	} else {
		fmt.Fprintln(e.stderr, banner)
	}
	log.Info("serving", "addr", ln.Addr().String(), "database", kycd.RedactURL(cfg.Database))

	var wg sync.WaitGroup
	wg.Go(func() { purgeLoop(bg, log, store, cfg.Retention, cfg.AuditRetention, cfg.HoldRetention) })
	wg.Go(func() { dispatcher.Run(bg) })
	wg.Go(func() { in.Run(bg) })
	wg.Go(func() { stalled.Run(bg) })
	if cfg.ReconcileEvery > 0 {
		r := e.reconciler(store, in, log, reconcileMetrics)
		wg.Go(func() { e.reconcileLoop(bg, r, in, cfg.ReconcileEvery, log) })
	}

	served := make(chan error, 1)
	go func() {
		if cert != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate is TLSConfig's
			return
		}
		served <- srv.Serve(ln)
	}()
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
	if err := ln.Close(); err != nil {
		log.Warn("shutting down: closing the listener", "err", err)
	}
	log.Info("shutting down: answering 503 while draining", "drain", cfg.Drain)
	time.Sleep(cfg.Drain)
	log.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Then the log appender finishes the batch it is committing, the
	// projector its transaction (what is left is projected at the next
	// start), and the dispatcher stops claiming: sends under way finish
	// within their timeout and are recorded before the store closes.
	in.Close()
	dctx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), shutdownDrainProjection)
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

// maxConnections is --max-connections, or when 0 three quarters of the
// open-file limit (the rest is for the store, the sinks and the files
// kycd opens), at most 16384.
func maxConnections(flag int) int {
	if flag > 0 {
		return flag
	}
	n := openFileLimit()
	if n <= 0 {
		return 16384
	}
	return max(16, min(n*3/4, 16384))
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

// checkStoredSecret warns, loudly, when the database holds a Ralio secret
// (generated by an earlier start) that is not among the secrets configured:
// if Ralio still signs with it, every delivery gets 401. The secret itself
// is never written out.
func (e *env) checkStoredSecret(ctx context.Context, log *slog.Logger, store kycd.Store, secrets []string) error {
	stored, err := store.Setting(ctx, settingRalioSecret)
	if kycd.ErrorCode(err) == kycd.ENOTFOUND {
		return nil
	}
	if err != nil {
		return fmt.Errorf("the stored Ralio secret: %w", err)
	}
	if slices.Contains(secrets, stored) {
		return nil
	}
	if !e.jsonLogs() {
		fmt.Fprintf(e.stderr, "WARNING: the Ralio secret kept in the database (generated by an earlier kycd serve) is not among --ralio-secret's.\n"+
			"  If Ralio still signs with it, every delivery now gets 401. Keep it configured beside the new one during a rotation\n"+
			"  (kycd secrets show prints it); deliveries refused meanwhile wait in the signature hold: kycd quarantine list.\n")
	}
	log.Warn("the Ralio secret kept in the database is not among the configured ones: deliveries signed with it get 401 (see kycd secrets show)",
		"configured", len(secrets))
	return nil
}

// generated returns the stored value of key, generating, keeping and
// showing it once on the first start (as `stripe listen` does; see
// showGenerated). recovery says how to get it back should it not be
// shown.
func (e *env) generated(ctx context.Context, log *slog.Logger, store kycd.Store, key, what, howToSet, value, recovery string) (string, error) {
	v, created, err := store.InitSetting(ctx, key, value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if created {
		text := fmt.Sprintf("Generated %s (kept in the database, shown only this once; set %s to choose your own):\n  %s\n", what, howToSet, v)
		if err := e.showGenerated(log, what, text, recovery); err != nil {
			return "", err
		}
	}
	return v, nil
}

// adminToken makes sure the API has an admin token. --admin-token sets
// the token named admin (created, or its hash replaced). Without it, when
// the store holds no admin token at all (the first start), one is
// generated, kept as a hash only, so a copy of the database is no copy of
// the key, and printed once. A token an older kycd kept in plain text is
// replaced by its hash.
func (e *env) adminToken(ctx context.Context, log *slog.Logger, store kycd.Store) error {
	now := time.Now().UTC()
	if e.cfg.AdminToken != "" {
		err := store.PutToken(ctx, &kycd.Token{Name: kycd.AdminTokenName, Role: kycd.RoleAdmin, Hash: kycd.TokenHash(e.cfg.AdminToken), CreatedAt: now})
		if err != nil {
			return fmt.Errorf("--admin-token: %w", err)
		}
		return nil
	}
	hasAdmin := func() (bool, error) {
		tokens, err := store.Tokens(ctx)
		if err != nil {
			return false, fmt.Errorf("an admin token: %w", err)
		}
		admin := false
		for _, t := range tokens {
			if !kycd.IsTokenHash(t.Hash) {
				t.Hash = kycd.TokenHash(t.Hash)
				if err := store.PutToken(ctx, t); err != nil {
					return false, fmt.Errorf("an admin token: keep it as a hash: %w", err)
				}
			}
			admin = admin || t.Role == kycd.RoleAdmin
		}
		return admin, nil
	}
	if ok, err := hasAdmin(); ok || err != nil {
		return err
	}
	token := randomToken()
	err := (&app.Service{Store: store}).AddToken(ctx, &kycd.Token{Name: kycd.AdminTokenName, Role: kycd.RoleAdmin, Hash: kycd.TokenHash(token), CreatedAt: now})
	if kycd.ErrorCode(err) == kycd.ECONFLICT {
		// Another replica starting at the same moment made it first, or a
		// token of another role has the name.
		if ok, err := hasAdmin(); ok || err != nil {
			return err
		}
		return fmt.Errorf("no admin token, and a token named %s of another role exists: create one with kycd tokens create NAME --role admin, or set --admin-token / KYCD_ADMIN_TOKEN", kycd.AdminTokenName)
	}
	if err != nil {
		return fmt.Errorf("an admin token: %w", err)
	}
	return e.showGenerated(log, "an admin token",
		fmt.Sprintf("Generated an admin token (kept in the database as a hash, shown only this once; set --admin-token / KYCD_ADMIN_TOKEN to choose your own, or create named tokens with kycd tokens create):\n  %s\n", token),
		"kycd tokens create NAME --role admin makes another")
}

// registerSinks records the configured sinks, so that the API, the CLI and
// the metrics know them and flag the deliveries of any other sink as
// orphaned, and says which sinks are paused or have orphaned deliveries.
func (e *env) registerSinks(ctx context.Context, log *slog.Logger, store kycd.Store) error {
	if err := (&app.Service{Store: store, Logger: log}).RegisterSinks(ctx, e.sinkInfos()); err != nil {
		return fmt.Errorf("register sinks: %w", err)
	}
	sinks, err := (&app.Service{Store: store, Logger: log}).ListSinks(ctx)
	if err != nil {
		return fmt.Errorf("register sinks: %w", err)
	}
	for _, s := range sinks {
		if !s.PausedAt.IsZero() {
			log.Warn("sink paused since its endpoint answered 410 Gone; its deliveries wait: resume it with kycd sinks resume NAME",
				"sink", s.Name, "paused_at", s.PausedAt, "reason", s.PauseReason)
		}
		if n := s.Orphaned(); n > 0 {
			log.Warn("deliveries wait for a sink that is no longer configured: move them to another sink (kycd deliveries move ID --to NAME) or drop them",
				"sink", s.Name, "deliveries", n)
		}
	}
	return nil
}

// randomToken returns 256 random bits, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// purgeLoop removes, hourly, the personal data older than the retention
// (app.Purge) and the audit entries older than the audit retention.
func purgeLoop(ctx context.Context, log *slog.Logger, store kycd.Store, retention, auditRetention, holdRetention time.Duration) {
	svc := &app.Service{Store: store, Logger: log}
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if p, err := svc.Purge(ctx, retention); err != nil {
			if ctx.Err() == nil {
				log.Warn("retention purge failed", "err", err)
			}
		} else if p.Total() > 0 {
			log.Info("retention purge", "bodies", p.EventBodies, "sessions", p.Sessions, "notifications", p.Notifications, "quarantine", p.Quarantine)
		}
		if n, err := svc.PurgeHold(ctx, holdRetention); err != nil {
			if ctx.Err() == nil {
				log.Warn("signature hold retention purge failed", "err", err)
			}
		} else if n > 0 {
			log.Info("signature hold retention purge", "bodies", n)
		}
		if n, err := svc.PurgeAudit(ctx, auditRetention); err != nil {
			if ctx.Err() == nil {
				log.Warn("audit retention purge failed", "err", err)
			}
		} else if n > 0 {
			log.Info("audit retention purge", "entries", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
