package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

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

// generatedSecretsFile is the default name of the file of the secrets
// serve generated, when stderr is not a terminal.
const generatedSecretsFile = "kycd-generated-secrets" //nolint:gosec // G101: a file's name, not a secret

// showGenerated shows text, which holds a secret serve generated (what):
// on the terminal when stderr is one. Otherwise stderr is a log stream
// that a journal or a pipeline keeps and forwards, where no secret may
// go: the text is appended to a file that only its owner may read
// (secretsPath), and the log says where. recovery says how to get the
// secret back should the file not be written.
func (e *env) showGenerated(log *slog.Logger, what, text, recovery string) error {
	if isTerminal(e.stderr) {
		fmt.Fprint(e.stderr, text)
		return nil
	}
	path, err := e.secretsPath()
	if err == nil {
		err = appendPrivate(path, fmt.Sprintf("# kycd serve, %s\n%s", time.Now().UTC().Format(time.RFC3339), text))
	}
	if err != nil {
		return fmt.Errorf("generated %s, kept in the database, but could not write it out for you (--generated-secrets-file / KYCD_GENERATED_SECRETS_FILE): %w; it will not be shown again: %s", what, err, recovery)
	}
	log.Warn("generated "+what+": it is in a file only its owner can read, not in this log; read it there, then delete the file", "file", path)
	return nil
}

// secretsPath is where showGenerated writes: --generated-secrets-file, or
// kycd-generated-secrets beside the SQLite database, or else in systemd's
// $STATE_DIRECTORY, or else in the working directory; absolute, for the
// log to name.
func (e *env) secretsPath() (string, error) {
	path := e.cfg.SecretsFile
	if path == "" {
		dir := "."
		if driver, addr, err := parseDatabase(e.cfg.Database); err == nil && driver == "sqlite" {
			dir = filepath.Dir(addr)
		} else if state, _, _ := strings.Cut(e.getenv("STATE_DIRECTORY"), ":"); state != "" {
			dir = state
		}
		path = filepath.Join(dir, generatedSecretsFile)
	}
	return filepath.Abs(path)
}

// appendPrivate appends text to the file at path, creating it readable
// and writable by its owner only, and making it so if it was not.
func appendPrivate(path, text string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600) //nolint:gosec // G304: the file the operator named, or beside the database
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	fi, err := f.Stat()
	switch {
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	case fi.Mode().Perm() != 0o600:
		if err := f.Chmod(0o600); err != nil {
			return err
		}
	}
	_, err = f.WriteString(text)
	return err
}

// isTerminal reports whether stream (a reader or a writer) is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
