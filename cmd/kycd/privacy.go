package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
)

// addSubjectDataCmds adds export and erase to the command named subjects
// of root.
func addSubjectDataCmds(e *env, root *cobra.Command) {
	for _, c := range root.Commands() {
		if c.Name() == "subjects" {
			c.AddCommand(subjectExportCmd(e), subjectEraseCmd(e))
		}
	}
}

func subjectExportCmd(e *env) *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "export SUBJECT_ID [--type T]",
		Short: "Print everything kycd holds about a subject, as one JSON document",
		Long: `Print everything kycd holds about a subject as one JSON document: the
subject and its level, every session with checks, reasons and history, every
event with its raw body (while retained), the notifications with their
deliveries and attempts, and the quarantined bodies that name it. A subject
known only through quarantined bodies (no session or event names it) is
exported with those; --type is needed then, a body does not say it. It holds
personal data: the export is recorded in the audit trail first.`,
		Args: cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			a, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			x, err := a.ExportSubject(cmd.Context(), e.cliActor(), args[0], typ)
			if err != nil {
				return err
			}
			return printJSON(e.stdout, x)
		}),
	}
	cmd.Flags().StringVar(&typ, "type", "", "subject type when one id has several, or when only quarantined bodies name it: user, related-party or business")
	e.use(cmd, storeFlags...)
	return cmd
}

func subjectEraseCmd(e *env) *cobra.Command {
	var typ string
	var yes bool
	cmd := &cobra.Command{
		Use:   "erase SUBJECT_ID [--type T]",
		Short: "Erase a subject's personal data everywhere kycd keeps it, and tell the sinks",
		Long: `Erase a subject's personal data everywhere kycd keeps it: the raw bodies of
its events, the reason messages of its sessions, the contact details,
verification URLs and messages of its notifications (which deliveries send),
its quarantined bodies (also for a subject known only through them, with
--type). Ids, body hashes, statuses, timestamps and reason
codes stay, so a late copy of an erased event is still a duplicate. Every
sink whose events take it is sent kyc.subject.erased (a running kycd serve
sends it). It cannot be undone; export first if the person asked for their
data too. Recorded in the audit trail.

On a terminal it asks for confirmation; elsewhere (a script, a pipe) it
needs --yes.`,
		Example: `  kycd subjects erase 0190c3a2-0000-7000-8000-000000000001
  kycd subjects erase 0190c3a2-0000-7000-8000-000000000001 --type related-party --yes --json`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(_ *cobra.Command, args []string) error {
			switch {
			case yes:
				return nil
			case !e.interactive:
				return usagef("subjects erase cannot be undone and no terminal is there to confirm it: add --yes to erase %s", shown(args[0]))
			case !e.confirm(fmt.Sprintf("Erase the personal data of subject %s everywhere kycd keeps it? It cannot be undone.", shown(args[0]))):
				return errors.New("not confirmed: nothing was erased")
			}
			return nil
		},
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			// An event acknowledged but not projected yet would escape the
			// erasure (withStore waited for it already).
			switch caught, err := ingest.CaughtUp(cmd.Context(), store, 0, nil); {
			case err != nil:
				return err
			case !caught:
				return fmt.Errorf("some received events are not projected yet, and the erasure would miss them: start kycd serve (it projects them) and erase again")
			}
			a, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			r, err := a.EraseSubject(cmd.Context(), e.cliActor(), args[0], typ)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, r)
			}
			c := r.Erased
			fmt.Fprintf(e.stdout, "Erased the personal data of %s %s at %s:\n", shown(r.Subject.Type), shown(r.Subject.ID), ts(r.ErasedAt))
			fmt.Fprintf(e.stdout, "  %d event bodies, %d sessions' reason messages, %d notifications, %d quarantined bodies\n",
				c.EventBodies, c.Sessions, c.Notifications, c.Quarantine)
			if r.NotificationID != "" {
				fmt.Fprintf(e.stdout, "kyc.subject.erased %s is due to the sinks; a running kycd serve sends it\n", shown(r.NotificationID))
			} else {
				fmt.Fprintln(e.stdout, "no sink takes kyc.subject.erased: nothing was sent")
			}
			if r.Warning != "" {
				fmt.Fprintf(e.stderr, "warning: %s\n", shown(r.Warning))
			}
			return nil
		}),
	}
	cmd.Flags().StringVar(&typ, "type", "", "subject type when one id has several, or when only quarantined bodies name it: user, related-party or business")
	cmd.Flags().BoolVar(&yes, "yes", false, "erase without asking (needed where stdin is not a terminal)")
	e.use(cmd, storeFlags...)
	return cmd
}
