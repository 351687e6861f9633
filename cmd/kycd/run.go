package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/ingest"
	"github.com/kycd/kycd/postgres"
	"github.com/kycd/kycd/sqlite"
)

// env is what every command works with: its configuration and its streams.
type env struct {
	cfg    config
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is kycd's whole program; main and the tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "kycd",
		Short:         "Receive Ralio KYC webhooks, keep every session's true state, notify your systems",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := applyEnv(cmd.Flags(), getenv); err != nil {
				return err
			}
			return e.cfg.validate()
		},
	}
	e.cfg.flags(root.PersistentFlags())
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see kycd %s --help)", err, cmd.Name())
	})
	root.AddCommand(
		serveCmd(e),
		migrateCmd(e),
		sendCmd(e),
		sessionsCmd(e),
		subjectsCmd(e),
		quarantineCmd(e),
		deliveriesCmd(e),
		sinksCmd(e),
		rebuildCmd(e),
		reconcileCmd(e),
		emulatorCmd(e),
		versionCmd(e),
		tokensCmd(e),
		auditCmd(e),
	)
	addSubjectDataCmds(e, root)
	return root.ExecuteContext(ctx)
}

// openStore opens the configured database and brings its schema up to date.
// With mustExist, a SQLite file that is not there is an error rather than a
// new empty database: reading commands should not create one by accident.
func (e *env) openStore(ctx context.Context, mustExist bool) (kycd.Store, error) {
	driver, addr, err := parseDatabase(e.cfg.Database)
	if err != nil {
		return nil, err
	}
	switch driver {
	case "sqlite":
		if mustExist {
			if _, err := os.Stat(addr); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("no database at %s: start kycd serve first, or point --database (KYCD_DATABASE) at the one it uses", addr)
			}
		}
		s, err := sqlite.Open(addr)
		if err != nil {
			return nil, err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
	s, err := postgres.Open(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("--database %s: %w", kycd.RedactURL(addr), err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func migrateCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the database schema, then exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := e.openStore(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintln(e.stdout, "database is up to date:", kycd.RedactURL(e.cfg.Database))
			return nil
		},
	}
}

// withStore adapts a command that reads or changes the database: it opens
// the existing database for run and closes it after.
func (e *env) withStore(run func(cmd *cobra.Command, args []string, store kycd.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		store, err := e.openStore(cmd.Context(), true)
		if err != nil {
			return err
		}
		defer store.Close()
		e.waitProjected(cmd.Context(), store)
		ids := make([]string, len(args))
		for i, a := range args {
			ids[i] = a
			if u, err := uuid.Parse(a); err == nil {
				ids[i] = u.String() // ids are stored in canonical lower case
			}
		}
		return run(cmd, ids, store)
	}
}

// cliReadWait bounds how long a command waits for serve's projector to
// take in the events acknowledged before it started.
const cliReadWait = 3 * time.Second

// waitProjected lets a command see every event acknowledged before it
// started, waiting a little for the projector of a running serve, and says
// on stderr when the answer may be behind.
func (e *env) waitProjected(ctx context.Context, store kycd.Store) {
	caught, err := ingest.CaughtUp(ctx, store, cliReadWait, nil)
	switch {
	case err != nil:
		fmt.Fprintf(e.stderr, "note: could not check whether every received event is projected: %v\n", err)
	case !caught:
		fmt.Fprintln(e.stderr, "note: some received events are not projected yet (kycd serve projects them; is it running?), so this answer may be behind")
	}
}

func rebuildCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "rebuild",
		Short: "Re-derive sessions, subjects and history from the event log, without notifying again",
		Long: `Re-derive every session, subject level and history entry from the events
whose bodies are still in the log (within --retention), e.g. after a
projection rule changed. No notification is sent again. Stop kycd serve
first: the projection is rebuilt in place.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := e.openStore(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer store.Close()
			in, err := ingest.New(cmd.Context(), store, ingest.Options{})
			if err != nil {
				return err
			}
			defer in.Close()
			n, err := in.Rebuild(cmd.Context())
			if err != nil {
				return err
			}
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]int64{"events": n})
			}
			fmt.Fprintf(e.stdout, "rebuilt the projection from %d events in the log\n", n)
			return nil
		},
	}
}
