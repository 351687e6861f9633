package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kycd/kycd/ralio/emulator"
)

// emulatorConfig is the configuration of `kycd emulator`. Its flags are the
// command's own: some share a name with serve's (--addr, --ralio-secret,
// --retry-base) but not their meaning, so they have their own environment
// twins, and KYCD_ADDR meant for serve never moves the emulator.
type emulatorConfig struct {
	Addr             string
	WebhookURL       string
	RalioSecret      string
	APIKey           string
	RetryBase        time.Duration
	RetryMaxAttempts int
	Duplicates       float64
	Reorder          time.Duration
	Generation       string
	Seed             uint64
}

// emulatorEnvTwins maps each emulator flag to its environment variable.
var emulatorEnvTwins = map[string]string{ //nolint:gosec // G101: names of environment variables, not their values
	"addr":               "KYCD_EMULATOR_ADDR",
	"webhook-url":        "KYCD_EMULATOR_WEBHOOK_URL",
	"ralio-secret":       "KYCD_EMULATOR_RALIO_SECRET",
	"api-key":            "KYCD_EMULATOR_API_KEY",
	"retry-base":         "KYCD_EMULATOR_RETRY_BASE",
	"retry-max-attempts": "KYCD_EMULATOR_RETRY_MAX_ATTEMPTS",
	"duplicates":         "KYCD_EMULATOR_DUPLICATES",
	"reorder":            "KYCD_EMULATOR_REORDER",
	"generation":         "KYCD_EMULATOR_GENERATION",
	"seed":               "KYCD_EMULATOR_SEED",
}

func (c *emulatorConfig) flags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", "127.0.0.1:8090", "address the emulator listens on (its REST API and control API)")
	fs.StringVar(&c.WebhookURL, "webhook-url", "", "where webhooks go, e.g. http://127.0.0.1:8080/webhooks/ralio (required)")
	fs.StringVar(&c.RalioSecret, "ralio-secret", "", "secret that signs the webhooks; give kycd serve the same one (required)")
	fs.StringVar(&c.APIKey, "api-key", "", "bearer token that the emulated Ralio REST API requires (required)")
	fs.DurationVar(&c.RetryBase, "retry-base", emulator.DefaultRetryBase, "wait before a failed webhook's first retry; doubles after each failure")
	fs.IntVar(&c.RetryMaxAttempts, "retry-max-attempts", emulator.DefaultMaxAttempts, "attempts before the emulator gives up on a webhook")
	fs.Float64Var(&c.Duplicates, "duplicates", 0, "probability, 0 to 1, that a delivered webhook is sent once more")
	fs.DurationVar(&c.Reorder, "reorder", 0, "hold each webhook for a random time up to this long, so they arrive out of order")
	fs.StringVar(&c.Generation, "generation", string(emulator.GenerationC), "envelope generation of the webhooks: A, B, C or mixed")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the random choices, to replay a run (default: a random seed, printed at start)")
}

// validate checks what flag parsing cannot, naming the flag and the fix.
func (c *emulatorConfig) validate() error {
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:8090", c.Addr)
	}
	if c.WebhookURL == "" {
		return errors.New("--webhook-url is required: where kycd receives webhooks, e.g. http://127.0.0.1:8080/webhooks/ralio")
	}
	if u, err := url.Parse(c.WebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--webhook-url %q: want http(s)://HOST/PATH, e.g. http://127.0.0.1:8080/webhooks/ralio", c.WebhookURL)
	}
	if c.RalioSecret == "" {
		return errors.New("--ralio-secret is required: the secret that signs webhooks (start kycd serve with the same --ralio-secret)")
	}
	if c.APIKey == "" {
		return errors.New("--api-key is required: the bearer token of the emulated REST API, e.g. --api-key $(openssl rand -hex 16)")
	}
	if c.RetryBase <= 0 {
		return fmt.Errorf("--retry-base %s: must be positive, e.g. 1m", c.RetryBase)
	}
	if c.RetryMaxAttempts < 1 {
		return fmt.Errorf("--retry-max-attempts %d: must be at least 1", c.RetryMaxAttempts)
	}
	if c.Duplicates < 0 || c.Duplicates > 1 {
		return fmt.Errorf("--duplicates %v: want a probability from 0 to 1, e.g. 0.1", c.Duplicates)
	}
	if c.Reorder < 0 {
		return fmt.Errorf("--reorder %s: must not be negative", c.Reorder)
	}
	if _, err := emulator.ParseGeneration(c.Generation); err != nil {
		return fmt.Errorf("--generation %q: want A, B, C or mixed", c.Generation)
	}
	return nil
}

func emulatorCmd(e *env) *cobra.Command {
	var c emulatorConfig
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local Ralio: its REST API, a control API to drive sessions, and webhooks sent the way Ralio sends them",
		Long: `The emulator is a local Ralio, for trying kycd end to end and testing it under
Ralio's behaviour. It serves Ralio's REST API for KYC sessions under /api/v1
(Authorization: Bearer <--api-key>) and a control API under /emulator/v1 that
makes things happen: POST /emulator/v1/sessions/{id}/outcome with
{"event":"kyc_session_failed","userId":"<uuid>"} rejects a session and sends
the webhook. Webhooks are signed with --ralio-secret, wait 60 s for an answer,
are retried on 5xx, timeouts and connection errors with exponential backoff,
and dropped on 4xx. GET /emulator/v1/deliveries shows every attempt.

Faults on demand: --duplicates, --reorder, --generation mixed.`,
		Example: `  kycd emulator --webhook-url http://127.0.0.1:8080/webhooks/ralio --ralio-secret s3cret --api-key k
  kycd emulator --webhook-url … --ralio-secret … --api-key … --duplicates 0.2 --reorder 5s --generation mixed --retry-base 1s`,
		Args: cobra.NoArgs,
		// The root's hook would apply serve's environment twins to the
		// flags of the same names here; this one applies the emulator's.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnvTwins(cmd.Flags(), emulatorEnvTwins, e.getenv); err != nil {
				return usage(err)
			}
			// --log-format and --log-level are serve's too, with the same
			// variables.
			logTwins := map[string]string{"log-format": envTwins["log-format"], "log-level": envTwins["log-level"]}
			if err := applyEnvTwins(cmd.Flags(), logTwins, e.getenv); err != nil {
				return usage(err)
			}
			if err := e.cfg.checkLogging(); err != nil {
				return usage(err)
			}
			return usage(c.validate())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("seed") && e.getenv(emulatorEnvTwins["seed"]) == "" {
				c.Seed = rand.Uint64() //nolint:gosec // G404: the seed of a replayable simulation, printed at start; no secret
			}
			return e.emulate(cmd.Context(), c)
		},
	}
	c.flags(cmd.Flags())
	e.use(cmd, "log-format", "log-level")
	return cmd
}

// emulate serves the emulator until ctx is cancelled.
func (e *env) emulate(ctx context.Context, c emulatorConfig) error {
	log := e.logger()
	e.logging = true
	gen, _ := emulator.ParseGeneration(c.Generation)
	em, err := emulator.New(emulator.Options{
		WebhookURL:  c.WebhookURL,
		Secret:      c.RalioSecret,
		APIKey:      c.APIKey,
		RetryBase:   c.RetryBase,
		MaxAttempts: c.RetryMaxAttempts,
		Duplicates:  c.Duplicates,
		Reorder:     c.Reorder,
		Generation:  gen,
		Seed:        c.Seed,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	defer em.CloseIdleConnections()
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("--addr %s: %w", c.Addr, err)
	}
	if !isLoopback(c.Addr) {
		log.Warn("the control API has no authentication and this address is reachable from other machines", "addr", c.Addr)
	}
	srv := &http.Server{Handler: em.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(e.stdout, "kycd emulator listening on http://%s (Ralio API: /api/v1/account/…; control: /emulator/v1/…)\n", ln.Addr())
	fmt.Fprintf(e.stdout, "sending webhooks to %s: generation %s, retries from %s for %d attempts, duplicates %v, reorder up to %s, seed %d\n",
		c.WebhookURL, gen, c.RetryBase, c.RetryMaxAttempts, c.Duplicates, c.Reorder, c.Seed)

	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBg()
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := em.Run(bg); err != nil {
			log.Error("emulator: the webhook loop stopped", "err", err)
		}
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		stopBg()
		wg.Wait()
		return fmt.Errorf("emulator: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	// Webhooks not yet delivered are lost with the emulator's memory, as
	// they would be if Ralio gave up on them.
	stopBg()
	wg.Wait()
	if err != nil {
		return fmt.Errorf("emulator: shutdown: %w", err)
	}
	return nil
}
