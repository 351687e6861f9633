package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
)

func resendCmd(e *env) *cobra.Command {
	var eventID, notificationID, sink string
	cmd := &cobra.Command{
		Use:   "resend --event ID | --notification ID [--sink NAME]",
		Short: "Send a notification again, in a new round of attempts, to every sink that takes it or to one",
		Long: `Send a notification again: to every configured sink whose events take its type
(as when it was first sent), or with --sink to that sink alone. A sink that
had a delivery of it gets that delivery back, due now in a new round of
attempts, whatever its state; a sink that had none (added since, or whose
filter changed) gets a new delivery. A running kycd serve sends them; the
receivers see the same notification id (webhook-id) as before.

--event names the Ralio event whose notification to resend; --notification
names a notification by its id (kyc.session.stalled notifications, from the
watchdog, have no event of their own).`,
		Args: cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			if (eventID == "") == (notificationID == "") {
				return usagef("give --event ID or --notification ID (see kycd resend --help)")
			}
			id := canonicalID(notificationID)
			if eventID != "" {
				eventID = canonicalID(eventID)
				ev, err := store.Event(cmd.Context(), eventID)
				if err != nil {
					return err
				}
				if ev.Outcome != kycd.OutcomeApplied {
					return kycd.Errorf(kycd.EINVALID, "event %s is %s: it notified nothing, so there is nothing to resend", eventID, ev.Outcome)
				}
				id = kycd.NotificationID(eventID)
			}
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			resent, err := svc.ResendNotification(cmd.Context(), e.cliActor(), id, sink)
			if kycd.ErrorCode(err) == kycd.ENOTFOUND && eventID != "" {
				return kycd.Errorf(kycd.ENOTFOUND, "event %s produced no notification", eventID)
			}
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"notificationId": id, "deliveries": resent})
			}
			for _, r := range resent {
				how := "its delivery is due again, in a new round"
				if r.Created {
					how = "a new delivery is due"
				}
				fmt.Fprintf(e.stdout, "notification %s to %s: %s (delivery %s)\n", shown(id), shown(r.Sink), how, shown(r.DeliveryID))
			}
			fmt.Fprintln(e.stdout, "a running kycd serve sends it")
			return nil
		}),
	}
	cmd.Flags().StringVar(&eventID, "event", "", "resend the notification of this Ralio event")
	cmd.Flags().StringVar(&notificationID, "notification", "", "resend the notification of this id")
	cmd.Flags().StringVar(&sink, "sink", "", "only to the configured sink of this name (kycd sinks list shows them)")
	e.use(cmd, storeFlags...)
	return cmd
}
