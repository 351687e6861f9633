package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

func auditCmd(e *env) *cobra.Command {
	cmd := group("audit", "Read the audit trail: who changed what, who read personal data")
	var f kycd.AuditFilter
	list := &cobra.Command{
		Use:   "list",
		Short: "List the audit trail, newest first, a page at a time",
		Long: `List the audit trail, newest first: every change (retry, replay, move, drop,
resume, erase, token create and revoke) and every read of personal data
(raw bodies, quarantined bodies, invitation contact data, exports), refused
attempts too, with who (the API token's name, or cli:USER), when, on what,
from where, and how it ended. --target subject: takes every target that
begins with it.`,
		Args: cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			if f.Limit < 1 || f.Limit > 500 {
				return usagef("--limit %d: want 1 to 500", f.Limit)
			}
			page, err := a.Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printList(e.stdout, page.Items, page.NextCursor)
			}
			return printAudit(e.stdout, page)
		}),
	}
	list.Flags().StringVar(&f.Actor, "actor", "", "only this actor's entries (a token's name, or cli:USER)")
	list.Flags().StringVar(&f.Action, "action", "", "only this action's entries, e.g. subject.erase")
	list.Flags().StringVar(&f.Target, "target", "", "only this target's entries, e.g. subject:user:ID; ending in ':' takes every target that begins with it")
	list.Flags().IntVar(&f.Limit, "limit", 100, "at most this many (1 to 500)")
	list.Flags().StringVar(&f.Cursor, "cursor", "", "continue after the page that printed this cursor")
	e.use(list, storeFlags...)
	cmd.AddCommand(list)
	return cmd
}

// printAudit prints a page of the audit trail as a table, saying when
// there is more.
func printAudit(out io.Writer, page *kycd.AuditPage) error {
	if len(page.Items) == 0 {
		fmt.Fprintln(out, "no audit entries")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tAT\tACTOR\tACTION\tTARGET\tREMOTE\tOUTCOME\tDETAIL")
	for _, a := range page.Items {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, ts(a.At), shown(a.Actor), shown(a.Action), shown(a.Target), shown(orDash(a.Remote)), shown(a.Outcome), shown(orDash(a.Detail)))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if page.NextCursor != "" {
		fmt.Fprintf(out, "\nThere are more: add --cursor %s\n", shown(page.NextCursor))
	}
	return nil
}
