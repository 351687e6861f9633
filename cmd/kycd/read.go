package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ingest"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

// printJSON writes v indented, for scripts.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func sessionsCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "sessions", Short: "Read KYC sessions"}
	cmd.AddCommand(&cobra.Command{
		Use:   "get SESSION_ID",
		Short: "Show a session's status, checks, failure reasons and history",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			s, err := store.Session(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, s)
			}
			printSession(e.stdout, s)
			return nil
		}),
	})
	return cmd
}

func printSession(out io.Writer, s *kycd.Session) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Session\t%s\n", s.ID)
	fmt.Fprintf(w, "Subject\t%s %s\n", s.Subject.Type, s.Subject.ID)
	fmt.Fprintf(w, "Status\t%s\tsince %s (event %s)\n", s.Status, ts(s.StatusAt), s.StatusEventID)
	w.Flush()
	if len(s.Checks) > 0 {
		fmt.Fprintln(out, "\nChecks")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, c := range s.Checks {
			fmt.Fprintf(w, "  %s\t%s\n", c.Type, c.State)
			for _, r := range c.Reasons {
				fmt.Fprintf(w, "    %s\t%s\n", r.Code, strings.TrimSpace(r.Message+" "+bracket(r.Category)))
			}
		}
		w.Flush()
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(out, "\nFailures")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, f := range s.Failures {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", f.CheckType, f.Code, f.Message)
		}
		w.Flush()
	}
	fmt.Fprintln(out, "\nHistory")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, h := range s.History {
		applied := "applied"
		if !h.Applied {
			applied = "stale (not applied)"
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", ts(h.Timestamp), h.Event, h.EventID, applied)
	}
	w.Flush()
}

func subjectsCmd(e *env) *cobra.Command {
	var typ string
	cmd := &cobra.Command{Use: "subjects", Short: "Read subjects (users, related parties, businesses)"}
	get := &cobra.Command{
		Use:   "get SUBJECT_ID",
		Short: "Show a subject's level and sessions",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			s, err := store.Subject(cmd.Context(), args[0], typ)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, s)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Subject\t%s %s\n", s.Type, s.ID)
			level := s.Level
			if level == "" {
				level = "-"
			}
			fmt.Fprintf(w, "Level\t%s\t%s\n", level, ts(s.LevelAt))
			fmt.Fprintln(w, "\nSessions")
			for _, ss := range s.Sessions {
				fmt.Fprintf(w, "  %s\t%s\t%s\n", ss.ID, ss.Status, ts(ss.StatusAt))
			}
			return w.Flush()
		}),
	}
	get.Flags().StringVar(&typ, "type", "", "subject type when one id has several: user, related-party or business")
	cmd.AddCommand(get)
	return cmd
}

func quarantineCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "quarantine", Short: "Inspect and replay refused webhook bodies"}
	var all bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List refused bodies waiting for a replay",
		Args:  cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			items, err := store.Quarantine(cmd.Context(), all, 0)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, items)
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stdout, "quarantine is empty")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tRECEIVED\tREASON\tEVENT\tREPLAYED")
			for _, q := range items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", q.ID, ts(q.ReceivedAt), q.Reason, orDash(q.EventID), orDash(q.ReplayResult))
			}
			return w.Flush()
		}),
	}
	list.Flags().BoolVar(&all, "all", false, "include bodies already replayed")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a refused body and why it was refused",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			q, err := store.QuarantineItem(cmd.Context(), args[0])
			// The bodies are personal data: not printed unless recorded.
			if aerr := e.audit(cmd.Context(), store, kycd.AuditQuarantineRead, kycd.AuditTarget("quarantine", args[0]), err, ""); aerr != nil && err == nil {
				return fmt.Errorf("the body is not printed: %w", aerr)
			}
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, struct {
					*kycd.Quarantined
					Body         string `json:"body"`
					OriginalBody string `json:"originalBody,omitempty"`
				}{q, string(q.Body), string(q.OriginalBody)})
			}
			fmt.Fprintf(e.stdout, "ID        %s\nReceived  %s\nReason    %s\nEvent     %s\nProblem   %s\n", q.ID, ts(q.ReceivedAt), q.Reason, orDash(q.EventID), q.Problem)
			if q.ReplayResult != "" {
				fmt.Fprintf(e.stdout, "Replayed  %s (%s)\n", ts(q.ReplayedAt), q.ReplayResult)
			}
			fmt.Fprintf(e.stdout, "\nBody\n%s\n", strings.TrimSpace(string(q.Body)))
			if q.OriginalBody != nil {
				fmt.Fprintf(e.stdout, "\nBody stored first under this event id\n%s\n", strings.TrimSpace(string(q.OriginalBody)))
			}
			return nil
		}),
	}
	replay := &cobra.Command{
		Use:   "replay ID",
		Short: "Run a refused body through ingest again (after a fix)",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
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
			res, err := in.Replay(cmd.Context(), args[0])
			e.audit(cmd.Context(), store, kycd.AuditQuarantineReplay, kycd.AuditTarget("quarantine", args[0]), err, "event "+res.EventID+" "+res.Outcome)
			if err != nil {
				return fmt.Errorf("replay %s: %w", args[0], err)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"quarantineId": args[0], "eventId": res.EventID, "outcome": res.Outcome, "duplicate": res.Duplicate})
			}
			if res.Duplicate {
				fmt.Fprintf(e.stdout, "replayed %s: event %s was already recorded\n", args[0], res.EventID)
				return nil
			}
			fmt.Fprintf(e.stdout, "replayed %s: event %s %s\n", args[0], res.EventID, res.Outcome)
			return nil
		}),
	}
	cmd.AddCommand(list, show, replay)
	return cmd
}

func bracket(s string) string {
	if s == "" {
		return ""
	}
	return "[" + s + "]"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func versionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kycd's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			if v == "" {
				v = "(devel)"
				if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintln(e.stdout, "kycd", v)
			return nil
		},
	}
}
