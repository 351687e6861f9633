package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ralio"
)

// secretsCmd shows the Ralio secret that kycd serve generated and keeps in
// the database. It is a credential: printed to stdout only, when asked, and
// never logged.
func secretsCmd(e *env) *cobra.Command {
	cmd := group("secrets", "Show the Ralio webhook secret kept in the database")
	show := &cobra.Command{
		Use:   "show",
		Short: "Print the Ralio webhook secret that kycd serve generated (a credential)",
		Long: `Print the Ralio webhook secret that kycd serve generated on its first start
and keeps in the database, to give it to Ralio again or to keep it
configured beside a new one during a rotation:

  kycd serve --ralio-secret NEW --ralio-secret "$(kycd secrets show)"

It is a credential: it goes to stdout only, and is never logged.`,
		Args: cobra.NoArgs,
		RunE: e.withStore(func(cmd *cobra.Command, _ []string, store kycd.Store) error {
			secret, err := store.Setting(cmd.Context(), settingRalioSecret)
			if kycd.ErrorCode(err) == kycd.ENOTFOUND {
				return kycd.Errorf(kycd.ENOTFOUND, "the database keeps no Ralio secret: kycd serve generates one only when started without --ralio-secret")
			}
			if err != nil {
				return fmt.Errorf("the Ralio secret: %w", err)
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]string{"ralioSecret": secret})
			}
			fmt.Fprintln(e.stdout, secret)
			return nil
		}),
	}
	e.use(show, storeFlags...)
	cmd.AddCommand(show)
	return cmd
}

// replayVerifier is what checks a held body's signature when the CLI
// replays it: the secrets of --ralio-secret, as serve takes them, or
// without them the one kept in the database; nil when there is none, so
// that no held body is replayed.
func (e *env) replayVerifier(ctx context.Context, store kycd.Store) (*ralio.Verifier, error) {
	secrets := e.cfg.RalioSecrets
	if len(secrets) == 0 {
		stored, err := store.Setting(ctx, settingRalioSecret)
		if kycd.ErrorCode(err) == kycd.ENOTFOUND {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("the Ralio secret: %w", err)
		}
		secrets = []string{stored}
	}
	v, err := ralio.NewVerifier(secrets...)
	if err != nil {
		return nil, fmt.Errorf("--ralio-secret: %w", err)
	}
	return v, nil
}
