package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/reconcile"
)

func reconcileCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reconcile",
		Short: "Compare kycd's sessions with Ralio's REST API once and apply what kycd missed",
		Long: `Ask Ralio's REST API (--ralio-api-url, --ralio-api-key) for the sessions of
every user kycd knows (and those given with --user), and apply the
transitions kycd never received, through the same rules as webhooks,
notifying as a webhook would have. Running it again changes nothing.

Progress goes to stderr (every 100 users or 5 s). A run that ends with a
user or session it could not check after retries is recorded failed and
exits 1; one stopped by --reconcile-timeout or a signal is interrupted,
exits 1, and the next run resumes after the last user it finished.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if err := e.cfg.requireRalioAPI("kycd reconcile"); err != nil {
				return err
			}
			store, err := e.openStore(cmd.Context(), existing)
			if err != nil {
				return err
			}
			defer closeStore(store, &err)
			guide, err := e.guidance()
			if err != nil {
				return err
			}
			routes, err := e.registeredRoutes(cmd.Context(), store)
			if err != nil {
				return err
			}
			in, err := ingest.New(cmd.Context(), store, ingest.Options{Sinks: routes, Guide: guide.For, MaxClockSkew: e.cfg.MaxClockSkew})
			if err != nil {
				return err
			}
			defer in.Close()
			log := slog.New(slog.DiscardHandler)
			r := e.reconciler(store, in, log, nil)
			r.Progress = progressTo(e.stderr, time.Now)
			run, runErr := r.Run(cmd.Context(), e.cfg.Users)
			if run == nil {
				return runErr
			}
			// What it appended takes effect now; serve's dispatcher sends the
			// notifications.
			if _, err := in.Drain(context.WithoutCancel(cmd.Context())); err != nil {
				return fmt.Errorf("reconcile: project: %w", err)
			}
			if e.cfg.JSON {
				if err := printJSON(e.stdout, run); err != nil {
					return err
				}
			} else {
				printReconciliation(e, run)
			}
			if runErr != nil {
				return fmt.Errorf("reconcile stopped after user %s: %w (the next run resumes there)", orDash(run.Cursor), runErr)
			}
			if run.State == kycd.ReconcileFailed {
				return fmt.Errorf("reconcile failed: %s (the next run tries again)", errorsSummary(run))
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&e.cfg.Users, "user", nil, "also reconcile these Ralio user ids (repeat or comma-separate)")
	e.use(cmd, append(storeFlags, "guidance", "ralio-api-url", "ralio-api-key", "reconcile-rate",
		"reconcile-timeout", "reconcile-request-timeout", "max-clock-skew")...)
	return cmd
}

// progressTo prints a run's progress on w: its start, then every 100
// users or 5 s, and its last user.
func progressTo(w io.Writer, now func() time.Time) func(*kycd.Reconciliation, int, int) {
	var last time.Time
	return func(run *kycd.Reconciliation, done, total int) {
		t := now()
		if done == 0 {
			fmt.Fprintf(w, "reconcile: %d users to check\n", total)
			last = t
			return
		}
		if done%100 != 0 && done != total && t.Sub(last) < 5*time.Second {
			return
		}
		last = t
		fmt.Fprintf(w, "reconcile: %d of %d users checked, %d sessions checked, %d repaired, %d errors (%s)\n",
			done, total, run.Checked, len(run.Repaired), len(run.Errors), t.Sub(run.StartedAt).Round(time.Second))
	}
}

// errorsSummary says how many errors a run met, and the first.
func errorsSummary(run *kycd.Reconciliation) string {
	n := fmt.Sprintf("%d errors", len(run.Errors))
	if len(run.Errors) == 1 {
		n = "1 error"
	}
	if len(run.Errors) == 0 {
		return n
	}
	return n + ", the first: " + run.Errors[0]
}

func printReconciliation(e *env, run *kycd.Reconciliation) {
	fmt.Fprintf(e.stdout, "reconciliation %s: %s\n", shown(run.ID), shown(run.State))
	fmt.Fprintf(e.stdout, "  users checked     %d\n", run.Users)
	fmt.Fprintf(e.stdout, "  sessions checked  %d\n", run.Checked)
	fmt.Fprintf(e.stdout, "  drift found       %d\n", run.Drift)
	fmt.Fprintf(e.stdout, "  sessions repaired %d\n", len(run.Repaired))
	for _, id := range run.Repaired {
		fmt.Fprintf(e.stdout, "    %s\n", shown(id))
	}
	fmt.Fprintf(e.stdout, "  errors            %d\n", len(run.Errors))
	for _, msg := range run.Errors {
		fmt.Fprintf(e.stdout, "    %s\n", shown(msg))
	}
}

// reconciler builds a Reconciler on the configured Ralio API.
func (e *env) reconciler(store kycd.Store, in *ingest.Ingester, log *slog.Logger, m *reconcile.Metrics) *reconcile.Reconciler {
	return &reconcile.Reconciler{
		Store:    store,
		Receiver: in,
		Client: &reconcile.Client{
			BaseURL:        e.cfg.RalioAPIURL,
			APIKey:         e.cfg.RalioAPIKey,
			HTTP:           &http.Client{},
			Limiter:        rate.NewLimiter(rate.Limit(e.cfg.ReconcileRate), 1),
			RequestTimeout: e.cfg.ReconcileRequest,
		},
		Logger:  log,
		Metrics: m,
		Timeout: e.cfg.ReconcileTimeout,
	}
}

// requireRalioAPI names the flags a command that talks to Ralio's REST API
// needs.
func (c *config) requireRalioAPI(who string) error {
	var missing []string
	if c.RalioAPIURL == "" {
		missing = append(missing, "--ralio-api-url (KYCD_RALIO_API_URL)")
	}
	if c.RalioAPIKey == "" {
		missing = append(missing, "--ralio-api-key (KYCD_RALIO_API_KEY)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s reads Ralio's REST API: set %s", who, strings.Join(missing, " and "))
	}
	return nil
}

// reconcileLoop reconciles every interval until ctx ends. An interrupted
// run (shutdown, --reconcile-timeout) is resumed by the next one; a failed
// one is logged, and the next run tries every user again.
func (e *env) reconcileLoop(ctx context.Context, r *reconcile.Reconciler, in *ingest.Ingester, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if caught, _ := in.CaughtUp(ctx, 10*time.Second); !caught && ctx.Err() == nil {
			log.Warn("reconciling while the projection is behind; a webhook not yet projected may look missing (it is applied once either way)")
		}
		run, err := r.Run(ctx, e.cfg.Users)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("reconciliation stopped; the next run resumes", "err", err)
		case run != nil && run.State == kycd.ReconcileFailed:
			log.Warn("reconciliation failed for some users or sessions; the next run tries again", "errors", errorsSummary(run))
		}
	}
}
