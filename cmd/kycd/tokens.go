package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/app"
)

func tokensCmd(e *env) *cobra.Command {
	cmd := group("tokens", "Manage the API's named tokens and their roles")
	var role string
	create := &cobra.Command{
		Use:   "create NAME --role admin|operator|viewer",
		Short: "Create a named token and print it, this once",
		Long: `Create a named API token and print it on stdout, this once: kycd keeps its
SHA-256 only. viewer reads; operator also retries, replays, moves, drops
and resumes; admin also reads raw bodies and personal data, exports and
erases subjects, manages tokens and reads the audit log. The name is the
actor of the token's actions in the audit trail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			// Said before the store is opened: a typo makes no database.
			if _, err := kycd.ParseRole(role); err != nil {
				return usage(fmt.Errorf("--role: %w", err))
			}
			if err := kycd.CheckTokenName(args[0]); err != nil {
				return err
			}
			// A token may be made before the first serve: the database is
			// created if need be.
			store, err := e.openStore(cmd.Context(), migrating)
			if err != nil {
				return err
			}
			defer closeStore(store, &err)
			a, err := e.app(cmd.Context(), store)
			if err != nil {
				return err
			}
			created, err := a.CreateToken(cmd.Context(), e.cliActor(), args[0], role)
			if err != nil {
				return err
			}
			t, secret := &created.Token, created.Secret
			if e.cfg.JSON {
				return printJSON(e.stdout, struct {
					*kycd.Token
					Secret string `json:"token"`
				}{t, secret})
			}
			fmt.Fprintf(e.stderr, "Created token %s (role %s); it is shown only this once, kycd keeps its hash:\n", shown(t.Name), t.Role)
			fmt.Fprintln(e.stdout, secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "", "admin, operator or viewer (required)")
	if err := create.MarkFlagRequired("role"); err != nil {
		panic(err) // the flag is defined just above
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the tokens: names, roles, created, last used (never the tokens)",
		Args:  cobra.NoArgs,
		RunE: e.withApp(func(cmd *cobra.Command, _ []string, a *app.Service) error {
			tokens, err := a.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printList(e.stdout, tokens, "")
			}
			if len(tokens) == 0 {
				fmt.Fprintln(e.stdout, "no tokens: kycd serve makes one named admin on its first start, or use kycd tokens create")
				return nil
			}
			w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tROLE\tCREATED\tLAST USED")
			for _, t := range tokens {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", shown(t.Name), t.Role, ts(t.CreatedAt), ts(t.LastUsedAt))
			}
			return w.Flush()
		}),
	}

	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a token: it works no more, from the next request on",
		Args:  cobra.ExactArgs(1),
		RunE: e.withApp(func(cmd *cobra.Command, args []string, a *app.Service) error {
			if err := a.RevokeToken(cmd.Context(), e.cliActor(), args[0]); err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"name": args[0], "revoked": true})
			}
			fmt.Fprintf(e.stdout, "token %s is revoked\n", shown(args[0]))
			return nil
		}),
	}
	for _, c := range []*cobra.Command{create, list, revoke} {
		e.use(c, storeFlags...)
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
