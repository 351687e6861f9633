package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/kycd/kycd"
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
		versionCmd(e),
	)
	return root.ExecuteContext(ctx)
}

// openStore opens the configured database and brings its schema up to date.
// With mustExist, a SQLite file that is not there is an error rather than a
// new empty database: reading commands should not create one by accident.
func (e *env) openStore(ctx context.Context, mustExist bool) (kycd.Store, error) {
	return e.openStoreObserved(ctx, mustExist, nil)
}

// openStoreObserved is openStore with observe called on the size of every
// commit batch.
func (e *env) openStoreObserved(ctx context.Context, mustExist bool, observe func(int)) (kycd.Store, error) {
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
		var opts []sqlite.Option
		if observe != nil {
			opts = append(opts, sqlite.WithBatchObserver(observe))
		}
		s, err := sqlite.Open(addr, opts...)
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
		return nil, fmt.Errorf("--database %s: %w", redactDatabase(addr), err)
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
			fmt.Fprintln(e.stdout, "database is up to date:", e.cfg.Database)
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
