package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/user"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

func deliveriesCmd(e *env) *cobra.Command {
	cmd := group("deliveries", "Inspect, retry, move or drop notification deliveries (the dead letter)")
	var lf deliveryFlags
	f := &lf.f
	var pages pageFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, oldest first, a page at a time",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			if err := lf.check(); err != nil {
				return err
			}
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			items, next, err := collect(&pages, func(limit int, cursor string) ([]*kycd.Delivery, string, error) {
				f.Limit, f.Cursor = limit, cursor
				page, err := svc.Deliveries(cmd.Context(), *f)
				if err != nil {
					return nil, "", err
				}
				return page.Items, page.NextCursor, nil
			})
			if err != nil {
				return err
			}
			page := &kycd.DeliveryPage{Items: nonNil(items), NextCursor: next}
			for _, d := range page.Items {
				d.LastError = kycd.RedactText(d.LastError)
			}
			if e.cfg.JSON {
				return printList(e.stdout, page.Items, page.NextCursor)
			}
			return printDeliveries(e.stdout, page)
		}),
	}
	lf.add(list)
	list.Flags().BoolVar(&f.Orphaned, "orphaned", false, "only deliveries of sinks no longer configured")
	pages.add(list)
	e.use(list, storeFlags...)

	var sf deliveryFlags
	summary := &cobra.Command{
		Use:   "summary",
		Short: "Count the deliveries the filters select by sink and last error, the largest group first",
		Long: `Count the deliveries the filters select (those of deliveries list) by sink
and last error, the largest group first: what a dead letter after an outage
is made of. Then retry a group with deliveries retry --all-dead --sink, or
over the API by its filter (POST /api/v1/deliveries/retry).`,
		Example: `  kycd deliveries summary --state dead
  kycd deliveries summary --state dead --since 2026-11-30T00:00:00Z --json`,
		Args: cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			if err := sf.check(); err != nil {
				return err
			}
			sum, err := a.DeliverySummary(cmd.Context(), kycd.DeliverySelector{State: sf.f.State, Sink: sf.f.Sink, DeliveryMatch: sf.f.DeliveryMatch})
			if err != nil {
				return badValue(err)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, sum)
			}
			return printPage(e, sum.Groups, "", "no deliveries match", "SINK\tDELIVERIES\tLAST ERROR", func(g kycd.DeliveryGroup) string {
				return fmt.Sprintf("%s\t%d\t%s", shown(g.Sink), g.Count, shown(orDash(g.LastError)))
			})
		}),
	}
	sf.add(summary)
	e.use(summary, storeFlags...)

	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a delivery: its state, every attempt, the operators' changes and its notification",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			a, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			d, err := a.Delivery(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			d.Payload = withoutPersonalData(d.Payload)
			if e.cfg.JSON {
				return printJSON(e.stdout, d)
			}
			return printDelivery(e.stdout, d)
		}),
	}
	e.use(show, storeFlags...)

	var allDead bool
	var deadOf string
	retry := &cobra.Command{
		Use:   "retry ID|--all-dead [--sink NAME]",
		Short: "Make a delivery (or every dead one, of one sink or all) due now, with a fresh round of attempts",
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			if allDead == (len(args) == 1) || len(args) > 1 {
				return usagef("give one delivery ID or --all-dead")
			}
			if deadOf != "" && !allDead {
				return usagef("--sink takes the dead deliveries of one sink with --all-dead; a delivery named by its ID needs no --sink")
			}
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			if allDead {
				n, err := e.retryDead(cmd.Context(), svc, deadOf)
				if err != nil {
					return err
				}
				if e.cfg.JSON {
					return printJSON(e.stdout, map[string]int{"retried": n})
				}
				of := ""
				if deadOf != "" {
					of = " of sink " + shown(deadOf)
				}
				fmt.Fprintf(e.stdout, "%d dead deliveries%s are due again; a running kycd serve sends them\n", n, of)
				return nil
			}
			if err := svc.RetryDelivery(cmd.Context(), e.cliActor(), args[0]); err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "state": kycd.DeliveryPending})
			}
			fmt.Fprintf(e.stdout, "delivery %s is due again; a running kycd serve sends it\n", shown(args[0]))
			return nil
		}),
	}
	retry.Flags().BoolVar(&allDead, "all-dead", false, "retry every dead delivery")
	retry.Flags().StringVar(&deadOf, "sink", "", "with --all-dead, only the dead deliveries of the sink of this name")
	e.use(retry, storeFlags...)

	var to string
	move := &cobra.Command{
		Use:   "move ID --to SINK",
		Short: "Give a pending or dead delivery to another configured sink (e.g. one whose sink was removed)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			if to == "" {
				return usagef("--to: name the sink to move the delivery to (kycd sinks list shows them)")
			}
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			if err := svc.MoveDelivery(cmd.Context(), e.cliActor(), args[0], to); err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "sink": to, "state": kycd.DeliveryPending})
			}
			fmt.Fprintf(e.stdout, "delivery %s now belongs to %s and is due; a running kycd serve sends it\n", shown(args[0]), shown(to))
			return nil
		}),
	}
	move.Flags().StringVar(&to, "to", "", "the configured sink to give the delivery to")
	e.use(move, storeFlags...)

	drop := &cobra.Command{
		Use:   "drop ID",
		Short: "Give up a pending or dead delivery for good (it is kept, in state dropped)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			if _, err := svc.DropDelivery(cmd.Context(), e.cliActor(), args[0]); err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"id": args[0], "state": kycd.DeliveryDropped})
			}
			fmt.Fprintf(e.stdout, "delivery %s is dropped; it will not be sent\n", shown(args[0]))
			return nil
		}),
	}
	e.use(drop, storeFlags...)
	cmd.AddCommand(list, summary, show, retry, move, drop)
	return cmd
}

// deliveryFlags are the filters of deliveries list and summary.
type deliveryFlags struct {
	f            kycd.DeliveryFilter
	since, until timeFlag
}

func (d *deliveryFlags) add(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&d.f.State, "state", "", "only deliveries in this state: "+strings.Join(kycd.DeliveryStates, ", "))
	fs.StringVar(&d.f.Sink, "sink", "", "only deliveries of the sink of this name")
	fs.StringVar(&d.f.Type, "type", "", "only deliveries of notifications of this type, e.g. kyc.session.rejected")
	fs.StringVar(&d.f.SessionID, "session", "", "only deliveries of notifications about this session")
	fs.StringVar(&d.f.SubjectID, "subject", "", "only deliveries of notifications about this subject (user, related party or business id)")
	fs.Var(&d.since, "since", "only deliveries created at or after this RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
	fs.Var(&d.until, "until", "only deliveries created before this RFC 3339 time")
	fs.StringVar(&d.f.Error, "error", "", "only deliveries whose last error holds this text, in any case")
}

// check refuses an unknown --state and sets the times.
func (d *deliveryFlags) check() error {
	if app.CheckDeliveryState(d.f.State) != nil {
		return usagef("--state %q: want %s", d.f.State, strings.Join(kycd.DeliveryStates, ", "))
	}
	d.f.Since, d.f.Until = d.since.t, d.until.t
	return nil
}

// retryDead retries every dead delivery, of the sink named sink unless it
// is "", and says how many.
func (e *env) retryDead(ctx context.Context, svc *app.Service, sink string) (int, error) {
	if sink == "" {
		return svc.RetryDeadDeliveries(ctx, e.cliActor())
	}
	res, err := svc.RetryMatching(ctx, e.cliActor(), kycd.DeliverySelector{State: kycd.DeliveryDead, Sink: sink})
	return res.Changed, err
}

// printDeliveries prints a page of deliveries as a table, saying when
// there is more.
func printDeliveries(out io.Writer, page *kycd.DeliveryPage) error {
	if len(page.Items) == 0 {
		fmt.Fprintln(out, "no deliveries")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tTYPE\tSINK\tSTATE\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, d := range page.Items {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", shown(d.ID), shown(d.NotificationType), shown(d.Sink), shown(deliveryState(d)), d.AttemptCount, ts(d.NextAttemptAt), shown(orDash(d.LastError)))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printMore(out, page.NextCursor)
	return nil
}

// printDelivery prints one delivery with its attempts, the changes
// operators made and its notification.
func printDelivery(out io.Writer, d *kycd.Delivery) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Delivery\t%s\n", shown(d.ID))
	fmt.Fprintf(w, "Notification\t%s (%s)\n", shown(d.NotificationID), shown(d.NotificationType))
	fmt.Fprintf(w, "Sink\t%s\n", shown(d.Sink))
	fmt.Fprintf(w, "State\t%s\n", shown(deliveryState(d)))
	if d.State == kycd.DeliveryPending {
		fmt.Fprintf(w, "Next attempt\t%s\n", ts(d.NextAttemptAt))
	}
	fmt.Fprintf(w, "Created\t%s\n", ts(d.CreatedAt))
	fmt.Fprintf(w, "Updated\t%s\n", ts(d.UpdatedAt))
	if d.LastError != "" {
		fmt.Fprintf(w, "Last error\t%s\n", shown(d.LastError))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nAttempts (%d)\n", d.AttemptCount)
	if len(d.Attempts) > 0 {
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "  N\tAT\tDURATION\tOUTCOME\tSTATUS\tERROR")
		for _, a := range d.Attempts {
			status := "-"
			if a.StatusCode != 0 {
				status = fmt.Sprint(a.StatusCode)
			}
			fmt.Fprintf(w, "  %d\t%s\t%dms\t%s\t%s\t%s\n", a.N, ts(a.At), a.DurationMS, shown(a.Outcome), status, shown(orDash(a.Error)))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		for _, a := range d.Attempts {
			if a.ResponseBody != "" {
				fmt.Fprintf(out, "\nAnswer to attempt %d (its first KiB)\n%s\n", a.N, shownBlock(strings.TrimSpace(a.ResponseBody)))
			}
		}
	}
	if len(d.Actions) > 0 {
		fmt.Fprintln(out, "\nChanged by operators")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, a := range d.Actions {
			what := a.Action + " from " + a.From
			if a.To != "" {
				what += " to " + a.To
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\n", ts(a.At), shown(a.Actor), shown(what))
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(d.Payload) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, d.Payload, "", "  ") != nil {
			pretty.Reset()
			pretty.Write(d.Payload)
		}
		fmt.Fprintf(out, "\nNotification\n%s\n", shownBlock(pretty.String()))
	}
	return nil
}

// withoutPersonalData is a notification's JSON without its personal data
// (kycd.RedactPayload), marked where the invitation was: what the CLI
// prints ends up in terminals and tickets.
func withoutPersonalData(payload json.RawMessage) json.RawMessage {
	return kycd.RedactPayloadMarked(payload, "[personal data not shown]")
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
	cmd := group("sinks", "Show the notification sinks and resume a paused one")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the sinks: configured or not, paused or not, with their waiting deliveries",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			a, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			sinks, err := a.ListSinks(cmd.Context())
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printList(e.stdout, sinks, "")
			}
			if len(sinks) == 0 {
				fmt.Fprintln(e.stdout, "no sinks: kycd serve records its sinks when it starts")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tTYPE\tTARGET\tEVENTS\tORDER\tSTATE\tPENDING\tDEAD")
			for _, s := range sinks {
				events := "all"
				if len(s.Events) > 0 {
					events = fmt.Sprint(s.Events)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", shown(s.Name), shown(orDash(s.Type)), shown(orDash(s.Target)), shown(events),
					shown(orDash(s.Order)), shown(sinkState(s)), s.Pending, s.Dead)
			}
			return w.Flush()
		}),
	}
	resume := &cobra.Command{
		Use:   "resume NAME",
		Short: "Resume a sink paused by a 410 Gone: its pending deliveries are due again, in a new round",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			r, err := svc.ResumeSinkReport(cmd.Context(), e.cliActor(), args[0])
			if kycd.ErrorCode(err) == kycd.ENOTFOUND {
				return kycd.Errorf(kycd.ENOTFOUND, "unknown sink %q: kycd sinks list shows the sinks", args[0])
			}
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"sink": args[0], "wasPaused": r.WasPaused, "pending": r.Pending})
			}
			if !r.WasPaused {
				fmt.Fprintf(e.stdout, "sink %s was not paused: nothing changed\n", shown(args[0]))
				return nil
			}
			fmt.Fprintf(e.stdout, "resumed sink %s: %d of its pending deliveries are due again; a running kycd serve sends them\n", shown(args[0]), r.Pending)
			return nil
		}),
	}
	e.use(list, storeFlags...)
	e.use(resume, storeFlags...)
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
