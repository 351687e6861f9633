package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
)

func deliveriesCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "deliveries", Short: "Inspect and retry notification deliveries (the dead letter)"}
	var state string
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, oldest first",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			switch state {
			case "", kycd.DeliveryPending, kycd.DeliveryDelivered, kycd.DeliveryDead:
			default:
				return fmt.Errorf("--state %q: want pending, delivered or dead", state)
			}
			items, err := store.Deliveries(cmd.Context(), state, limit)
			if err != nil {
				return err
			}
			for _, d := range items {
				d.Sink = kycd.SinkLabel(d.Sink)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, items)
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stdout, "no deliveries")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tTYPE\tSINK\tSTATE\tATTEMPTS\tNEXT\tLAST ERROR")
			for _, d := range items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.NotificationType, d.Sink, d.State, d.AttemptCount, ts(d.NextAttemptAt), orDash(d.LastError))
			}
			return w.Flush()
		}),
	}
	list.Flags().StringVar(&state, "state", "", "only deliveries in this state: pending, delivered or dead")
	list.Flags().IntVar(&limit, "limit", 100, "at most this many")

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
				if err != nil {
					return err
				}
				if e.cfg.JSON {
					return printJSON(e.stdout, map[string]int{"retried": n})
				}
				fmt.Fprintf(e.stdout, "%d dead deliveries are due again; a running kycd serve sends them\n", n)
				return nil
			}
			if err := store.RetryDelivery(cmd.Context(), args[0], time.Now()); err != nil {
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
	cmd.AddCommand(list, retry)
	return cmd
}
