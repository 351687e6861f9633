package main

import (
	"fmt"
	"io"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
)

func deliveriesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "Inspect, retry, move or drop notification deliveries (the dead letter)"}
	var f kycd.DeliveryFilter
	list := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, oldest first, a page at a time",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			switch f.State {
			case "", kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead, kycd.DeliveryDropped:
			default:
				return fmt.Errorf("--state %q: want pending, delivered, dead or dropped", f.State)
			}
			if f.Limit < 1 || f.Limit > 500 {
				return fmt.Errorf("--limit %d: want 1 to 500", f.Limit)
			}
			page, err := store.Deliveries(cmd.Context(), f)
			if err != nil {
				return err
			}
			for _, d := range page.Items {
				d.LastError = kycd.RedactText(d.LastError)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, page)
			}
			printDeliveries(e.stdout, page)
			return nil
		}),
	}
	list.Flags().StringVar(&f.State, "state", "", "only deliveries in this state: pending, delivered, dead or dropped")
	list.Flags().StringVar(&f.Sink, "sink", "", "only deliveries of the sink of this name")
	list.Flags().BoolVar(&f.Orphaned, "orphaned", false, "only deliveries of sinks no longer configured")
	list.Flags().IntVar(&f.Limit, "limit", 100, "at most this many (1 to 500)")
	list.Flags().StringVar(&f.Cursor, "cursor", "", "continue after the page that printed this cursor")

	var allDead bool
	retry := &cobra.Command{
		Use:   "retry ID|--all-dead",
		Short: "Make a delivery (or every dead one) due now, with a fresh round of attempts",
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			if allDead == (len(args) == 1) || len(args) > 1 {
				return fmt.Errorf("give one delivery ID or --all-dead")
			}
			if allDead {
				n, err := store.RetryDeadDeliveries(cmd.Context(), time.Now())
				e.audit(cmd.Context(), store, kycd.AuditDeliveryRetry, "deliveries:dead", err, fmt.Sprintf("%d dead deliveries", n))
				if err != nil {
					return err
				}
				if e.cfg.JSON {
					return printJSON(e.stdout, map[string]int{"retried": n})
				}
				fmt.Fprintf(e.stdout, "%d dead deliveries are due again; a running kycd serve sends them\n", n)
				return nil
			}
			err := store.RetryDelivery(cmd.Context(), args[0], time.Now())
			e.audit(cmd.Context(), store, kycd.AuditDeliveryRetry, kycd.AuditTarget("delivery", args[0]), err, "")
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "state": kycd.DeliveryPending})
			}
			fmt.Fprintf(e.stdout, "delivery %s is due again; a running kycd serve sends it\n", args[0])
			return nil
		}),
	}
	retry.Flags().BoolVar(&allDead, "all-dead", false, "retry every dead delivery")

	var to string
	move := &cobra.Command{
		Use:   "move ID --to SINK",
		Short: "Give a pending or dead delivery to another configured sink (e.g. one whose sink was removed)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			if to == "" {
				return fmt.Errorf("--to: name the sink to move the delivery to (kycd sinks list shows them)")
			}
			err := store.MoveDelivery(cmd.Context(), args[0], to, e.actor(), time.Now())
			e.audit(cmd.Context(), store, kycd.AuditDeliveryMove, kycd.AuditTarget("delivery", args[0]), err, "to sink "+to)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "sink": to, "state": kycd.DeliveryPending})
			}
			fmt.Fprintf(e.stdout, "delivery %s now belongs to %s and is due; a running kycd serve sends it\n", args[0], to)
			return nil
		}),
	}
	move.Flags().StringVar(&to, "to", "", "the configured sink to give the delivery to")

	drop := &cobra.Command{
		Use:   "drop ID",
		Short: "Give up a pending or dead delivery for good (it is kept, in state dropped)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			err := store.DropDelivery(cmd.Context(), args[0], e.actor(), time.Now())
			e.audit(cmd.Context(), store, kycd.AuditDeliveryDrop, kycd.AuditTarget("delivery", args[0]), err, "")
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "state": kycd.DeliveryDropped})
			}
			fmt.Fprintf(e.stdout, "delivery %s is dropped; it will not be sent\n", args[0])
			return nil
		}),
	}
	cmd.AddCommand(list, retry, move, drop)
	return cmd
}

// printDeliveries prints a page of deliveries as a table, saying when
// there is more.
func printDeliveries(out io.Writer, page *kycd.DeliveryPage) {
	if len(page.Items) == 0 {
		fmt.Fprintln(out, "no deliveries")
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTYPE\tSINK\tSTATE\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, d := range page.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.NotificationType, d.Sink, deliveryState(d), d.AttemptCount, ts(d.NextAttemptAt), orDash(d.LastError))
	}
	w.Flush()
	if page.NextCursor != "" {
		fmt.Fprintf(out, "\nThere are more: add --cursor %s\n", page.NextCursor)
	}
}

// deliveryState is a delivery's state with why nothing sends it, if so.
func deliveryState(d *kycd.Delivery) string {
	switch {
	case d.Orphaned:
		return d.State + " (sink not configured: move or drop it)"
	case d.SinkPaused:
		return d.State + " (sink paused: resume it)"
	}
	return d.State
}

func sinksCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "sinks", Short: "Show the notification sinks and resume a paused one"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sinks: configured or not, paused or not, with their waiting deliveries",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			sinks, err := store.Sinks(cmd.Context())
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"items": sinks})
			}
			if len(sinks) == 0 {
				fmt.Fprintln(e.stdout, "no sinks: kycd serve records its sinks when it starts")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tTARGET\tEVENTS\tSTATE\tPENDING\tDEAD")
			for _, s := range sinks {
				events := "all"
				if len(s.Events) > 0 {
					events = fmt.Sprint(s.Events)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", s.Name, orDash(s.Type), orDash(s.Target), events, sinkState(s), s.Pending, s.Dead)
			}
			return w.Flush()
		}),
	}
	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a sink paused by a 410 Gone: its pending deliveries are due again, in a new round",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			n, err := store.ResumeSink(cmd.Context(), args[0], e.actor(), time.Now())
			e.audit(cmd.Context(), store, kycd.AuditSinkResume, kycd.AuditTarget("sink", args[0]), err, fmt.Sprintf("%d pending deliveries due", n))
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"sink": args[0], "pending": n})
			}
			fmt.Fprintf(e.stdout, "sink %s is not paused; %d of its pending deliveries are due again; a running kycd serve sends them\n", args[0], n)
			return nil
		}),
	}
	cmd.AddCommand(list, resume)
	return cmd
}

// sinkState says whether a sink is configured and whether it is paused.
func sinkState(s *kycd.SinkInfo) string {
	state := "configured"
	if !s.Configured {
		state = "not configured"
	}
	if !s.PausedAt.IsZero() {
		state += ", paused since " + ts(s.PausedAt) + " (" + s.PauseReason + ")"
	}
	return state
}

// actor names who runs the command, for the note an operator's change
// leaves on a delivery or sink.
func (e *env) actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	if name := e.getenv("USER"); name != "" {
		return "cli:" + name
	}
	return "cli"
}
