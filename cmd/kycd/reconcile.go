package main

import (
	"context"
	"fmt"
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
notifying as a webhook would have. Running it again changes nothing.`,
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
			in, err := ingest.New(cmd.Context(), store, ingest.Options{Sinks: routes, Guide: guide.For})
			if err != nil {
				return err
			}
			defer in.Close()
			log := slog.New(slog.DiscardHandler)
			run, runErr := e.reconciler(store, in, log, nil).Run(cmd.Context(), e.cfg.Users)
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
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&e.cfg.Users, "user", nil, "also reconcile these Ralio user ids (repeat or comma-separate)")
	e.use(cmd, append(storeFlags, "guidance", "ralio-api-url", "ralio-api-key", "reconcile-rate")...)
	return cmd
}

func printReconciliation(e *env, run *kycd.Reconciliation) {
	fmt.Fprintf(e.stdout, "reconciliation %s: %s\n", run.ID, run.State)
	fmt.Fprintf(e.stdout, "  users checked     %d\n", run.Users)
	fmt.Fprintf(e.stdout, "  sessions checked  %d\n", run.Checked)
	fmt.Fprintf(e.stdout, "  drift found       %d\n", run.Drift)
	fmt.Fprintf(e.stdout, "  sessions repaired %d\n", len(run.Repaired))
	for _, id := range run.Repaired {
		fmt.Fprintf(e.stdout, "    %s\n", id)
	}
	fmt.Fprintf(e.stdout, "  errors            %d\n", len(run.Errors))
	for _, msg := range run.Errors {
		fmt.Fprintf(e.stdout, "    %s\n", msg)
	}
}

// reconciler builds a Reconciler on the configured Ralio API.
func (e *env) reconciler(store kycd.Store, in *ingest.Ingester, log *slog.Logger, m *reconcile.Metrics) *reconcile.Reconciler {
	return &reconcile.Reconciler{
		Store:    store,
		Receiver: in,
		Client: &reconcile.Client{
			BaseURL: e.cfg.RalioAPIURL,
			APIKey:  e.cfg.RalioAPIKey,
			HTTP:    &http.Client{Timeout: 30 * time.Second},
			Limiter: rate.NewLimiter(rate.Limit(e.cfg.ReconcileRate), 1),
		},
		Logger:  log,
		Metrics: m,
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
// run (shutdown) is resumed by the next one.
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
		if _, err := r.Run(ctx, e.cfg.Users); err != nil && ctx.Err() == nil {
			log.Warn("reconciliation stopped; the next run resumes", "err", err)
		}
	}
}
