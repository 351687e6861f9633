package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
	"github.com/kycd/kycd/internal/ingest"
)

// printJSON writes v indented, for scripts.
// Characters a terminal acts on are escaped (jsonSafe).
func printJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(jsonSafe(b.Bytes()))
	return err
}

func ts(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// withApp runs a command with the application layer over the store
// (withStore), as cli:USER (e.cliActor).
func (e *env) withApp(run func(cmd *cobra.Command, args []string, a *app.Service) error) func(*cobra.Command, []string) error {
	return e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
		a, err := e.app(cmd.Context(), store)
		if err != nil {
			return err
		}
		return run(cmd, args, a)
	})
}

// pageFlags are a list's --limit, --cursor and --all.
type pageFlags struct {
	limit  int
	cursor string
	all    bool
	cmd    *cobra.Command
}

// listDefault is how many items a list shows unless --limit says.
const listDefault = 100

func (p *pageFlags) add(cmd *cobra.Command) {
	p.cmd = cmd
	cmd.Flags().IntVar(&p.limit, "limit", listDefault, "at most this many (1 to 500)")
	cmd.Flags().StringVar(&p.cursor, "cursor", "", "continue after the page that printed this cursor")
	cmd.Flags().BoolVar(&p.all, "all", false, "every page, from --cursor (or the first) to the last")
}

func (p *pageFlags) check() error {
	if p.all && p.cmd.Flags().Changed("limit") {
		return usagef("--all and --limit: give one (--all lists everything)")
	}
	if p.limit < 1 || p.limit > 500 {
		return usagef("--limit %d: want 1 to 500", p.limit)
	}
	return nil
}

// collect reads one page with fetch, or every page from the cursor on with
// --all, and returns the items and the cursor of what is left ("" when
// nothing is).
func collect[T any](p *pageFlags, fetch func(limit int, cursor string) ([]T, string, error)) ([]T, string, error) {
	if err := p.check(); err != nil {
		return nil, "", err
	}
	if !p.all {
		items, next, err := fetch(p.limit, p.cursor)
		return items, next, badValue(err)
	}
	var all []T
	for cursor := p.cursor; ; {
		items, next, err := fetch(500, cursor)
		if err != nil {
			return nil, "", badValue(err)
		}
		all = append(all, items...)
		if next == "" {
			return all, "", nil
		}
		cursor = next
	}
}

// printMore says how to see the rest of a list.
func printMore(out io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(out, "\nThere are more: add --cursor %s (or --all for every page)\n", shown(next))
	}
}

func sessionsCmd(e *env) *cobra.Command {
	cmd := group("sessions", "Read KYC sessions")
	cmd.Example = `  kycd sessions list --status REJECTED --since 2026-11-01T00:00:00Z
  kycd sessions get 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10
  kycd sessions stalled`
	get := &cobra.Command{
		Use:   "get SESSION_ID",
		Short: "Show a session's status, checks, failure reasons with their guidance, history, and what the sinks were told",
		Long: `Show a session: its status, checks, failure reasons with the guidance
sentence the user was given (the built-in sentences, with --guidance's over
them: give serve's file), its history, and every notification it produced
with each sink's delivery (state, attempts, last error). The notifications
are shown without personal data (contact details, reason messages).`,
		Example: `  kycd sessions get 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10
  kycd sessions get 0190c3a2-7f3e-7c4a-9a51-6b1f5c9e2d10 --json | jq '.failures[].guidance'`,
		Args: cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.Service) error {
			guide, err := e.guidance()
			if err != nil {
				return err
			}
			s, err := a.SessionDetail(cmd.Context(), args[0], guide.For)
			if err != nil {
				return err
			}
			for _, n := range s.Notifications {
				n.Payload = withoutPersonalData(n.Payload)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, s)
			}
			return printSession(e.stdout, s)
		}),
	}
	e.use(get, storeFlags...)
	e.useAs(get, "guidance", "JSON file of reason code → guidance sentence over the built-in ones: give serve's, so the sentences are those users were given")

	var status, subject, code string
	var since, until timeFlag
	var pages pageFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List sessions, newest status first, a page at a time",
		Example: `  kycd sessions list --status rejected
  kycd sessions list --code EXPIRED_DOCUMENT --since 2026-11-01T00:00:00Z --until 2026-12-01T00:00:00Z
  kycd sessions list --subject 0190c3a2-0000-7000-8000-000000000001 --json`,
		Args: cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			// Any case will do; which statuses exist is the application's
			// rule.
			st := kycd.Status(strings.ToUpper(status))
			items, next, err := collect(&pages, func(limit int, cursor string) ([]kycd.SessionListItem, string, error) {
				page, err := a.Sessions(cmd.Context(), kycd.SessionFilter{Status: st, SubjectID: subject, Code: code,
					Since: since.t, Until: until.t, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, "", err
				}
				return page.Sessions, page.NextCursor, nil
			})
			if err != nil {
				return err
			}
			return printPage(e, items, next, "no sessions", "SESSION\tSTATUS\tSINCE\tSUBJECT\tVERSION", func(s kycd.SessionListItem) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s %s\t%d", shown(s.ID), s.Status, ts(s.StatusAt), shown(s.Subject.Type), shown(s.Subject.ID), s.Version)
			})
		}),
	}
	list.Flags().StringVar(&status, "status", "", "only sessions in this status: "+joinStatuses())
	list.Flags().StringVar(&subject, "subject", "", "only the sessions of this subject (user, related party or business id)")
	list.Flags().StringVar(&code, "code", "", "only sessions whose current checks give a reason with this code, e.g. EXPIRED_DOCUMENT")
	list.Flags().Var(&since, "since", "only sessions whose status was set at or after this RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
	list.Flags().Var(&until, "until", "only sessions whose status was set before this RFC 3339 time")
	pages.add(list)
	e.use(list, storeFlags...)

	var stalledPages pageFlags
	stalled := &cobra.Command{
		Use:   "stalled",
		Short: "List the sessions stalled now (in REVIEW too long, or invitations expired), oldest status first",
		Long: `List the sessions stalled now, by the rule and threshold of serve's watchdog
(which notifies each once as kyc.session.stalled): in REVIEW for longer
than --review-alert-after (give serve's value), or invitations whose expiry
has passed, each with its reason.`,
		Example: `  kycd sessions stalled
  kycd sessions stalled --review-alert-after 24h --json`,
		Args: cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			items, next, err := collect(&stalledPages, func(limit int, cursor string) ([]kycd.StalledSession, string, error) {
				page, err := a.StalledSessions(cmd.Context(), app.StalledRequest{ReviewAlertAfter: e.cfg.ReviewAlertAfter, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, "", err
				}
				return page.Sessions, page.NextCursor, nil
			})
			if err != nil {
				return err
			}
			return printPage(e, items, next, "no stalled sessions", "SESSION\tSTATUS\tSINCE\tSUBJECT\tREASON", func(s kycd.StalledSession) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s %s\t%s", shown(s.ID), s.Status, ts(s.StatusAt), shown(s.Subject.Type), shown(s.Subject.ID), shown(s.Reason))
			})
		}),
	}
	stalledPages.add(stalled)
	e.use(stalled, storeFlags...)
	e.useAs(stalled, "review-alert-after", "how long a session may stay in REVIEW before it is stalled: give serve's value")
	cmd.AddCommand(get, list, stalled)
	return cmd
}

// timeFlag is a flag holding an RFC 3339 time; a value that is not one is
// a usage error naming the flag.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(v string) error {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time, e.g. 2026-11-01T00:00:00Z")
	}
	f.t = t.UTC()
	return nil
}

func (f *timeFlag) Type() string { return "time" }

// listJSON is what every list prints with --json: its items, and the
// cursor of the next page (null on the last page), as
// {"items":[…],"nextCursor":…}.
type listJSON[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"nextCursor"`
}

// printPage prints a page of a list: its --json (printList), or a table
// of header and one line per item (none when there is no item), then how
// to see the rest.
func printPage[T any](e *env, items []T, next, none, header string, line func(T) string) error {
	if e.cfg.JSON {
		return printList(e.stdout, items, next)
	}
	if len(items) == 0 {
		fmt.Fprintln(e.stdout, none)
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	for _, it := range items {
		fmt.Fprintln(w, line(it))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	printMore(e.stdout, next)
	return nil
}

// printList prints a list's --json.
func printList[T any](w io.Writer, items []T, next string) error {
	l := listJSON[T]{Items: nonNil(items)}
	if next != "" {
		l.NextCursor = &next
	}
	return printJSON(w, l)
}

func joinStatuses() string {
	var s []string
	for _, st := range kycd.SessionStatuses {
		s = append(s, string(st))
	}
	return strings.Join(s, ", ")
}

// nonNil makes an empty list print as [] in JSON, as the API answers.
func nonNil[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

func printSession(out io.Writer, s *app.SessionDetail) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Session\t%s\n", shown(s.ID))
	fmt.Fprintf(w, "Subject\t%s %s\n", shown(s.Subject.Type), shown(s.Subject.ID))
	fmt.Fprintf(w, "Status\t%s\tsince %s (event %s)\n", s.Status, ts(s.StatusAt), shown(s.StatusEventID))
	fmt.Fprintf(w, "Version\t%d\t(a notification with a higher sessionVersion is newer)\n", s.Version)
	if err := w.Flush(); err != nil {
		return err
	}
	if len(s.Checks) > 0 {
		fmt.Fprintln(out, "\nChecks")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, c := range s.Checks {
			fmt.Fprintf(w, "  %s\t%s\n", shown(c.Type), shown(c.State))
			for _, r := range c.Reasons {
				fmt.Fprintf(w, "    %s\t%s\n", shown(r.Code), shown(strings.TrimSpace(r.Message+" "+bracket(r.Category))))
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	if len(s.Failures) > 0 {
		fmt.Fprintln(out, "\nFailures")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, f := range s.Failures {
			fmt.Fprintf(w, "  %s\t%s\t%s\n", shown(f.CheckType), shown(f.Code), shown(f.Message))
			if f.Guidance != "" {
				fmt.Fprintf(w, "  \t\tthe user was told: %s\n", shown(f.Guidance))
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(out, "\nHistory")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, h := range s.History {
		applied := "applied"
		if !h.Applied {
			applied = "stale (not applied)"
		}
		if h.ClockSkew {
			applied += "; clock skew: ordered at " + ts(h.OrderedAt)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", ts(h.Timestamp), shown(h.Event), shown(h.EventID), applied)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nNotifications")
	if len(s.Notifications) == 0 {
		fmt.Fprintln(out, "  none")
		return nil
	}
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, n := range s.Notifications {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", ts(n.CreatedAt), shown(n.Type), shown(n.ID))
		if len(n.Deliveries) == 0 {
			fmt.Fprintf(w, "    \tno sink takes it\n")
		}
		for _, d := range n.Deliveries {
			attempts := "1 attempt"
			if d.AttemptCount != 1 {
				attempts = fmt.Sprintf("%d attempts", d.AttemptCount)
			}
			fmt.Fprintf(w, "    %s\t%s\t%s\tdelivery %s\t%s\n", shown(d.Sink), shown(deliveryState(d)), attempts, shown(d.ID), shown(orDash(d.LastError)))
		}
	}
	return w.Flush()
}

func subjectsCmd(e *env) *cobra.Command {
	var typ string
	cmd := group("subjects", "Read subjects (users, related parties, businesses)")
	get := &cobra.Command{
		Use:   "get SUBJECT_ID",
		Short: "Show a subject's level and sessions",
		Args:  cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.Service) error {
			s, err := a.Subject(cmd.Context(), args[0], typ)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, s)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Subject\t%s %s\n", shown(s.Type), shown(s.ID))
			level := s.Level
			if level == "" {
				level = "-"
			}
			fmt.Fprintf(w, "Level\t%s\t%s\n", shown(level), ts(s.LevelAt))
			fmt.Fprintln(w, "\nSessions")
			for _, ss := range s.Sessions {
				fmt.Fprintf(w, "  %s\t%s\t%s\n", shown(ss.ID), ss.Status, ts(ss.StatusAt))
			}
			return w.Flush()
		}),
	}
	get.Flags().StringVar(&typ, "type", "", "subject type when one id has several: user, related-party or business")
	e.use(get, storeFlags...)
	cmd.AddCommand(get)
	return cmd
}

func eventsCmd(e *env) *cobra.Command {
	cmd := group("events", "Read the events received from Ralio")
	var typ string
	var pages pageFlags
	list := &cobra.Command{
		Use:   "list",
		Short: "List events, last received first, a page at a time (without bodies)",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			items, next, err := collect(&pages, func(limit int, cursor string) ([]kycd.EventRecord, string, error) {
				page, err := a.Events(cmd.Context(), kycd.EventFilter{Type: typ, Limit: limit, Cursor: cursor})
				if err != nil {
					return nil, "", err
				}
				return page.Events, page.NextCursor, nil
			})
			if err != nil {
				return err
			}
			return printPage(e, items, next, "no events", "EVENT\tTYPE\tTIMESTAMP\tRECEIVED\tOUTCOME\tSESSION", func(ev kycd.EventRecord) string {
				return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", shown(ev.ID), shown(ev.Type), ts(ev.Timestamp), ts(ev.ReceivedAt), shown(ev.Outcome), shown(orDash(ev.SessionID)))
			})
		}),
	}
	list.Flags().StringVar(&typ, "type", "", "only events of this Ralio type, e.g. kyc_session_failed")
	pages.add(list)
	e.use(list, storeFlags...)

	var body bool
	get := &cobra.Command{
		Use:   "get EVENT_ID",
		Short: "Show an event: its type, times, outcome and session, and with --body the body received",
		Args:  cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.Service) error {
			// The body is personal data: read, and printed, only once its
			// read is in the audit trail, as the API's GET
			// /api/v1/events/{id} does.
			var ev *kycd.EventRecord
			var kept bool
			if body {
				rec, err := a.EventWithBody(cmd.Context(), e.cliActor(), args[0])
				if err != nil {
					return err
				}
				ev, kept = rec, rec.Body != nil
			} else {
				v, err := a.Event(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				ev, kept = v.EventRecord, v.BodyKept
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, ev)
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintf(w, "Event\t%s\n", shown(ev.ID))
			fmt.Fprintf(w, "Type\t%s\n", shown(ev.Type))
			fmt.Fprintf(w, "Timestamp\t%s\n", ts(ev.Timestamp))
			fmt.Fprintf(w, "Received\t%s\n", ts(ev.ReceivedAt))
			fmt.Fprintf(w, "Outcome\t%s\n", shown(outcomeText(ev.Outcome)))
			fmt.Fprintf(w, "Session\t%s\n", shown(orDash(ev.SessionID)))
			fmt.Fprintf(w, "Body hash\t%s\n", shown(ev.BodyHash))
			switch {
			case !kept:
				fmt.Fprintf(w, "Body\tpurged (older than serve's --retention)\n")
			case !body:
				fmt.Fprintf(w, "Body\tkept; --body shows it (it may hold personal data)\n")
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if body && kept {
				fmt.Fprintf(e.stdout, "\nBody\n%s\n", shownBlock(strings.TrimSpace(string(ev.Body))))
			}
			return nil
		}),
	}
	get.Flags().BoolVar(&body, "body", false, "also print the body as received (it may hold personal data, such as an invitation's contact details)")
	e.use(get, storeFlags...)
	cmd.AddCommand(list, get)
	return cmd
}

// outcomeText says what an event's outcome means.
func outcomeText(outcome string) string {
	switch outcome {
	case kycd.OutcomeApplied:
		return "applied (it set its session's or subject's state, and notified)"
	case kycd.OutcomeStale:
		return "stale (a newer event had already set its session's state: kept in the history, nothing changed)"
	case kycd.OutcomeUnhandled:
		return "unhandled (kycd keeps events of this type but acts on none)"
	}
	return outcome
}

func statsCmd(e *env) *cobra.Command {
	var window time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count sessions by status, and the failure codes of the sessions rejected within a window",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			if kycd.CheckStatsWindow(window) != nil {
				return usagef("--window %s: must be positive, e.g. 24h", window)
			}
			if limit < 1 || limit > 500 {
				return usagef("--limit %d: want 1 to 500", limit)
			}
			st, err := a.Stats(cmd.Context(), window, limit)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, st)
			}
			return printStats(e.stdout, st, window)
		}),
	}
	cmd.Flags().DurationVar(&window, "window", kycd.DefaultStatsWindow, "count the failure codes of sessions rejected within this window")
	cmd.Flags().IntVar(&limit, "limit", 10, "at most this many failure codes (1 to 500)")
	e.use(cmd, storeFlags...)
	return cmd
}

func printStats(out io.Writer, st *kycd.Stats, window time.Duration) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "Sessions by status")
	total := 0
	for _, s := range kycd.SessionStatuses {
		if n := st.SessionsBy[s]; n > 0 {
			fmt.Fprintf(w, "  %s\t%d\n", s, n)
			total += n
		}
	}
	fmt.Fprintf(w, "  total\t%d\n", total)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nFailure codes of sessions rejected in the last %s (since %s)\n", window, ts(st.Since))
	if len(st.TopFailureCodes) == 0 {
		fmt.Fprintln(out, "  none")
		return nil
	}
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, c := range st.TopFailureCodes {
		fmt.Fprintf(w, "  %s\t%d\n", shown(c.Code), c.Count)
	}
	return w.Flush()
}

func quarantineCmd(e *env) *cobra.Command {
	cmd := group("quarantine", "Inspect, replay and discard refused webhook bodies")
	var all bool
	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List refused bodies waiting for a replay, newest first",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			if limit < 1 || limit > 500 {
				return usagef("--limit %d: want 1 to 500", limit)
			}
			items, more, err := a.ListQuarantine(cmd.Context(), all, limit)
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				// The list has no cursor: --limit bounds it, newest first.
				return printList(e.stdout, items, "")
			}
			if len(items) == 0 {
				fmt.Fprintln(e.stdout, "quarantine is empty")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tRECEIVED\tREASON\tEVENT\tREPLAYED")
			for _, q := range items {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", shown(q.ID), ts(q.ReceivedAt), shown(q.Reason), shown(orDash(q.EventID)), shown(orDash(q.ReplayResult)))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if more {
				fmt.Fprintf(e.stdout, "\nThere are more, older: raise --limit (at most 500)\n")
			}
			return nil
		}),
	}
	list.Flags().BoolVar(&all, "all", false, "include bodies already replayed")
	list.Flags().IntVar(&limit, "limit", listDefault, "at most this many (1 to 500)")
	e.use(list, storeFlags...)
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a refused body and why it was refused",
		Args:  cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.Service) error {
			// The bodies are personal data: not printed unless recorded.
			q, err := a.QuarantineItem(cmd.Context(), e.cliActor(), args[0])
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
			fmt.Fprintf(e.stdout, "ID        %s\nReceived  %s\nReason    %s\nEvent     %s\nProblem   %s\n", shown(q.ID), ts(q.ReceivedAt), shown(q.Reason), shown(orDash(q.EventID)), shown(string(q.Problem)))
			if q.ReplayResult != "" {
				fmt.Fprintf(e.stdout, "Replayed  %s (%s)\n", ts(q.ReplayedAt), shown(q.ReplayResult))
			}
			fmt.Fprintf(e.stdout, "\nBody\n%s\n", shownBlock(strings.TrimSpace(string(q.Body))))
			if q.OriginalBody != nil {
				fmt.Fprintf(e.stdout, "\nBody stored first under this event id\n%s\n", shownBlock(strings.TrimSpace(string(q.OriginalBody))))
			}
			return nil
		}),
	}
	e.use(show, storeFlags...)
	replay := &cobra.Command{
		Use:   "replay ID",
		Short: "Run a refused body through ingest again (after a fix)",
		Long: `Run a refused body through ingest again (after a fix). What it notifies goes
to the sinks the last kycd serve to start registered, with --guidance's
sentences (give the same file as serve's). A body of the signature hold
(reason signature) is replayed only if it verifies under --ralio-secret's
secrets (as serve takes them), or without them the one kept in the database.`,
		Args: cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			guide, err := e.guidance()
			if err != nil {
				return err
			}
			routes, err := e.registeredRoutes(cmd.Context(), store)
			if err != nil {
				return err
			}
			verifier, err := e.replayVerifier(cmd.Context(), store)
			if err != nil {
				return err
			}
			opts := ingest.Options{Sinks: routes, Guide: guide.For, MaxClockSkew: e.cfg.MaxClockSkew}
			if verifier != nil { // a nil *ralio.Verifier is not a nil interface
				opts.Verifier = verifier
			}
			in, err := ingest.New(cmd.Context(), store, opts)
			if err != nil {
				return err
			}
			defer in.Close()
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			res, err := svc.ReplayQuarantine(cmd.Context(), e.cliActor(), in, args[0])
			if err != nil {
				return fmt.Errorf("replay %s: %w", args[0], err)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"quarantineId": args[0], "eventId": res.EventID, "outcome": res.Outcome, "duplicate": res.Duplicate})
			}
			if res.Duplicate {
				fmt.Fprintf(e.stdout, "replayed %s: event %s was already recorded\n", shown(args[0]), shown(res.EventID))
				return nil
			}
			fmt.Fprintf(e.stdout, "replayed %s: event %s %s\n", shown(args[0]), shown(res.EventID), shown(res.Outcome))
			return nil
		}),
	}
	e.use(replay, append(storeFlags, "max-clock-skew")...)
	e.useAs(replay, "guidance", "JSON file of reason code → guidance sentence over the built-in ones, for what the replay notifies: give serve's")
	e.useAs(replay, "ralio-secret", "secrets a body of the signature hold must verify under to be replayed, as serve takes them (default: the one kept in the database)")
	discard := &cobra.Command{
		Use:   "discard ID",
		Short: "Give a refused body up: kept, marked with who and when, out of the pending list",
		Args:  cobra.ExactArgs(1),
		RunE: e.withStore(func(cmd *cobra.Command, args []string, store kycd.Store) error {
			svc, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			actor := e.cliActor()
			at, err := svc.DiscardQuarantine(cmd.Context(), actor, args[0])
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"id": args[0], "discardedAt": at, "discardedBy": actor.Name})
			}
			fmt.Fprintf(e.stdout, "discarded %s: it is kept, and no longer waits for a replay\n", shown(args[0]))
			return nil
		}),
	}
	e.use(discard, storeFlags...)
	cmd.AddCommand(list, show, replay, discard)
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
