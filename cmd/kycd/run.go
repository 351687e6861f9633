package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kycd/kycd"
	"github.com/kycd/kycd/internal/ingest"
	"github.com/kycd/kycd/internal/postgres"
	"github.com/kycd/kycd/internal/sqlite"
)

// env is what every command works with: its configuration and its streams.
type env struct {
	cfg    config
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer

	// flags holds every flag of config, each command taking those it uses
	// (use), so that a command's help lists only what it reads.
	flags *pflag.FlagSet
	// fromEnv names the environment variable that set each flag this run,
	// and fromFile the configuration file's line, so that an error about
	// the flag names where its value came from too.
	fromEnv  map[string]string
	fromFile map[string]string
	// logging is set once a long-running command logs to stderr: with
	// --log-format json, its error is then a log line too.
	logging bool
	// interactive says that stdin is a terminal: a person can be asked
	// to confirm.
	interactive bool
}

// Flags that most commands take.
var (
	storeFlags = []string{"config", "database", "json"} // commands that open the database
	// serveFlags are serve's: what only a running server reads.
	serveFlags = []string{"config", "addr", "database", "ralio-secret", "admin-token", "sink", "sink-secret", "retention", "max-body",
		"body-budget", "peer-body-budget", "max-connections", "untrusted-idle-timeout", "log-format", "log-level", "generated-secrets-file", "retry-base", "retry-cap", "retry-max-attempts", "retry-max-age", "guidance",
		"shutdown-drain", "max-backlog", "ralio-api-url", "ralio-api-key", "reconcile-every", "reconcile-rate",
		"reconcile-timeout", "reconcile-request-timeout", "review-alert-after",
		"audit-retention", "max-clock-skew", "signature-hold-retention", "signature-hold-max-count", "signature-hold-max-bytes",
		"tls-cert", "tls-key", "trusted-proxies"}
)

// run is kycd's whole program; main and the tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	return newEnv(getenv, stdin, stdout, stderr).execute(ctx, args)
}

// newEnv is the env of one run over these streams.
func newEnv(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *env {
	return &env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr,
		flags: pflag.NewFlagSet("kycd", pflag.ContinueOnError), fromEnv: map[string]string{}, fromFile: map[string]string{},
		interactive: isTerminal(stdin)}
}

// execute runs the command args name.
func (e *env) execute(ctx context.Context, args []string) error {
	root := e.rootCmd()
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := e.nameEnv(root.ExecuteContext(ctx))
	if err != nil && e.logging && e.jsonLogs() {
		// The log stream holds JSON only: the error that stops serve is
		// its last line, and main prints nothing more.
		e.logger().Error("kycd stopped", "err", describe(err))
		return &loggedError{err}
	}
	return err
}

// rootCmd is kycd's tree of commands over e.
func (e *env) rootCmd() *cobra.Command {
	e.cfg.flags(e.flags)
	var showVersion bool
	root := &cobra.Command{
		Use:           "kycd",
		Short:         "Receive Ralio KYC webhooks, keep every session's true state, notify your systems",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          unknownSubcommand,
		Long: `kycd receives Ralio's signed KYC webhooks, records each exactly once, keeps
every session's true state and notifies your systems (HTTP, NATS, log sinks)
with retries, a dead letter and replay. kycd serve runs it; the other
commands read and change the database it uses (--database, KYCD_DATABASE).

Every flag bound to an environment variable names it in its help; a flag on
the command line wins over its variable.

Exit codes:
  0  success
  1  failure (the database, the network, a conflict, ...)
  2  usage error: an unknown command or flag, a bad flag value, a missing
     or extra argument, or --yes missing where no terminal can confirm
  3  not found: the session, delivery, sink, ... named does not exist`,
		Example: `  kycd serve --sink http=https://crm.example/hooks/kyc
  kycd sessions list --status REJECTED --code EXPIRED_DOCUMENT --since 2026-11-01T00:00:00Z
  kycd deliveries list --state dead --sink crm --json`,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return usage(e.configure(cmd))
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				return e.printVersion()
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print kycd's version (as kycd version does)")
	e.use(root, "json")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usage(fmt.Errorf("%w (see %s --help)", err, cmd.CommandPath()))
	})
	root.AddCommand(
		serveCmd(e),
		migrateCmd(e),
		sendCmd(e),
		sessionsCmd(e),
		subjectsCmd(e),
		eventsCmd(e),
		statsCmd(e),
		quarantineCmd(e),
		secretsCmd(e),
		deliveriesCmd(e),
		resendCmd(e),
		sinksCmd(e),
		rebuildCmd(e),
		backupCmd(e),
		restoreCmd(e),
		reconcileCmd(e),
		emulatorCmd(e),
		versionCmd(e),
		healthcheckCmd(e),
		tokensCmd(e),
		auditCmd(e),
		configCmd(e),
	)
	addSubjectDataCmds(e, root)
	hintOnArgs(root)
	addExamples(root)
	e.nameEnvInHelp(root)
	return root
}

// loggedError is an error already written to the log stream, which main
// does not print again.
type loggedError struct{ error }

func (e *loggedError) Unwrap() error { return e.error }

// configure fills the flags of cmd that the command line did not set:
// from their environment variables (a secret's also from the file its
// *_FILE variable names), else from the configuration file (--config,
// KYCD_CONFIG) when the command takes one; then checks the whole. Only
// config's flags are filled (twins): a command's own flag that shares a
// name (deliveries list --sink) takes neither.
func (e *env) configure(cmd *cobra.Command) error {
	fs := cmd.Flags()
	twins := e.twins(cmd)
	getenv, fromVars, err := withSecretFiles(fs, e.getenv)
	if err != nil {
		return err
	}
	fs.VisitAll(func(f *pflag.Flag) {
		if name, ok := twins[f.Name]; ok && !f.Changed && getenv(name) != "" {
			e.fromEnv[f.Name] = cmp.Or(fromVars[name], name)
		}
	})
	if err := applyEnvTwins(fs, twins, getenv); err != nil {
		return err
	}
	if fs.Lookup("config") != nil && e.cfg.ConfigFile != "" {
		c, err := readConfigFile(e.cfg.ConfigFile)
		if err != nil {
			return err
		}
		if err := e.applyConfigFile(fs, c); err != nil {
			return err
		}
	}
	return e.cfg.validate()
}

// use gives cmd the named flags of config.
func (e *env) use(cmd *cobra.Command, names ...string) {
	for _, name := range names {
		f := e.flags.Lookup(name)
		if f == nil {
			panic("kycd: no flag --" + name) // a typo in a command's list
		}
		cmd.Flags().AddFlag(f)
	}
}

// useAs gives cmd the flag name of config with a help text of its own:
// a flag shared by commands that read it differently (serve listens at
// --addr, send sends to it) says what it means to this one. The flag is a
// copy bound to the same value.
func (e *env) useAs(cmd *cobra.Command, name, usage string) {
	f := e.flags.Lookup(name)
	if f == nil {
		panic("kycd: no flag --" + name)
	}
	own := *f
	own.Usage = usage
	cmd.Flags().AddFlag(&own)
}

// twins maps each flag of cmd bound to an environment variable to that
// variable: the flags of config (given by use or useAs) to envTwins, the
// emulator's own to emulatorEnvTwins. A command's own flag that shares a
// name with one of config (deliveries list --sink) has no variable, so
// KYCD_SINKS meant for serve never filters a list.
func (e *env) twins(cmd *cobra.Command) map[string]string {
	out := map[string]string{}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if name := e.envOf(cmd, f); name != "" {
			out[f.Name] = name
		}
	})
	return out
}

// isConfigFlag reports whether f is one of config's flags (given by use or
// useAs), not a command's own of the same name.
func (e *env) isConfigFlag(f *pflag.Flag) bool {
	g := e.flags.Lookup(f.Name)
	return g != nil && g.Value == f.Value
}

// envOf is the environment variable that sets the flag f of cmd, or "".
func (e *env) envOf(cmd *cobra.Command, f *pflag.Flag) string {
	if e.isConfigFlag(f) {
		return envTwins[f.Name]
	}
	if cmd.Name() == "emulator" && cmd.Parent() != nil && !cmd.Parent().HasParent() {
		return emulatorEnvTwins[f.Name]
	}
	return ""
}

// nameEnvInHelp ends the help text of every flag bound to an environment
// variable with the variable's name, on every command of the tree.
func (e *env) nameEnvInHelp(cmd *cobra.Command) {
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if name := e.envOf(cmd, f); name != "" && !strings.Contains(f.Usage, name) {
			f.Usage += " [env " + name + "]"
		}
	})
	for _, c := range cmd.Commands() {
		e.nameEnvInHelp(c)
	}
}

// confirm asks the person at the terminal question and reports whether
// they answered yes.
func (e *env) confirm(question string) bool {
	fmt.Fprintf(e.stderr, "%s [type yes to go on] ", question)
	line, _ := bufio.NewReader(e.stdin).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "yes")
}

// usageError is an error in how a command was called: an unknown command
// or flag, a bad flag value, a missing or extra argument. kycd exits 2 on
// it (exitCode).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usage marks err, if any, as a usage error.
func usage(err error) error {
	var u *usageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return &usageError{err: err}
}

// usagef is a usage error of the message format makes.
func usagef(format string, args ...any) error { return &usageError{err: fmt.Errorf(format, args...)} }

// badValue marks an EINVALID error of the application layer as a usage
// error: what a command passes it comes from its flags and arguments.
func badValue(err error) error {
	if kycd.ErrorCode(err) == kycd.EINVALID {
		return usage(err)
	}
	return err
}

// Exit codes (kycd --help lists them).
const (
	exitFailure  = 1
	exitUsage    = 2
	exitNotFound = 3
)

// exitCode is the status kycd exits with after err.
func exitCode(err error) int {
	var u *usageError
	switch {
	case errors.As(err, &u):
		return exitUsage
	case kycd.ErrorCode(err) == kycd.ENOTFOUND:
		return exitNotFound
	}
	return exitFailure
}

// group is a command that only holds subcommands: alone it prints its
// help; with an argument that names no subcommand it fails.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  unknownSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
}

// unknownSubcommand refuses an argument to a command that takes only
// subcommands, suggesting the nearest.
func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return errors.New(msg)
}

// hintOnArgs makes every command's argument errors end with where its help
// is, so a mistyped line says what to read.
func hintOnArgs(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			switch {
			case err == nil:
				return nil
			case strings.Contains(err.Error(), c.CommandPath()):
				return usage(fmt.Errorf("%w (see %s --help)", err, c.CommandPath()))
			}
			return usage(fmt.Errorf("%s: %w (see %s --help)", c.CommandPath(), err, c.CommandPath()))
		}
	}
	for _, c := range cmd.Commands() {
		hintOnArgs(c)
	}
}

// nameEnv adds to err which environment variables or lines of the
// configuration file set the flags it names: a value from either is
// otherwise hard to find.
func (e *env) nameEnv(err error) error {
	if err == nil || len(e.fromEnv)+len(e.fromFile) == 0 {
		return err
	}
	msg := err.Error()
	var notes []string
	for _, from := range []map[string]string{e.fromEnv, e.fromFile} {
		for _, flag := range slices.Sorted(maps.Keys(from)) {
			name := from[flag]
			if mentionsFlag(msg, flag) && !strings.Contains(msg, name) {
				notes = append(notes, fmt.Sprintf("--%s was set by %s", flag, name))
			}
		}
	}
	if len(notes) == 0 {
		return err
	}
	return &envError{err: err, notes: notes}
}

// mentionsFlag reports whether msg names --flag (and not a longer flag
// that begins the same, as --sink-secret begins with --sink).
func mentionsFlag(msg, flag string) bool {
	for rest := msg; ; {
		i := strings.Index(rest, "--"+flag)
		if i < 0 {
			return false
		}
		rest = rest[i+2+len(flag):]
		if rest == "" || !isFlagChar(rest[0]) {
			return true
		}
	}
}

// isFlagChar reports whether c may go on a flag's name.
func isFlagChar(c byte) bool { return c == '-' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// envError is an error about flags, with the environment variables that
// set them.
type envError struct {
	err   error
	notes []string
}

func (e *envError) Error() string { return e.err.Error() + " (" + strings.Join(e.notes, "; ") + ")" }
func (e *envError) Unwrap() error { return e.err }

// How a command opens the database.
const (
	// migrating brings the schema up to date: serve and migrate only,
	// since a migration changes the database for every replica.
	migrating = iota
	// existing opens a database that is there and up to date, changing
	// neither its files nor its schema.
	existing
	// versioned opens a database that is there, whatever its schema: kycd
	// migrate --to, which looks at the schema itself.
	versioned
)

// migratable is a store whose schema a command can look at and move.
type migratable interface {
	kycd.Store
	Migrate(context.Context) error
	MigrateTo(ctx context.Context, version int64) ([]kycd.Migrated, error)
	Schema(context.Context) (kycd.Schema, error)
}

// openStore opens the configured database. With existing it creates no
// file (a mistyped path is an error, not a new empty database) and
// refuses a schema this build would have to migrate: only serve and
// migrate change the schema.
func (e *env) openStore(ctx context.Context, mode int) (kycd.Store, error) {
	driver, addr, err := parseDatabase(e.cfg.Database)
	if err != nil {
		return nil, err
	}
	var s migratable
	switch {
	case driver == "sqlite" && mode != migrating:
		st, err := sqlite.OpenExisting(ctx, addr)
		if kycd.ErrorCode(err) == kycd.ENOTFOUND {
			if _, statErr := os.Stat(addr); statErr == nil {
				return nil, fmt.Errorf("%s has no event log beside it (%s%s): not a kycd database, or a copy without its second file", addr, addr, sqlite.LogSuffix)
			}
			return nil, fmt.Errorf("no database at %s: start kycd serve first, or point --database (KYCD_DATABASE) at the one it uses", addr)
		}
		if err != nil {
			return nil, err
		}
		s = st
	case driver == "sqlite":
		if s, err = sqlite.Open(ctx, addr); err != nil {
			return nil, err
		}
	default:
		st, err := postgres.Open(ctx, addr)
		if err != nil {
			return nil, fmt.Errorf("--database %s: %w", kycd.RedactURL(addr), err)
		}
		s = st
	}
	switch mode {
	case migrating:
		// A newer build's schema is refused before anything migrates.
		if err = e.checkNewer(ctx, s); err == nil {
			err = s.Migrate(ctx)
		}
	case existing:
		err = e.checkSchema(ctx, s)
	}
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// closeStore closes a command's store when the command ends. A failure to
// close it (SQLite's last checkpoint, say) is the command's error, unless
// the command failed already: that error is the one to tell.
func closeStore(store interface{ Close() error }, err *error) {
	if cerr := store.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("close the database: %w", cerr)
	}
}

// checkSchema refuses a database whose schema is behind this build's, or
// ahead of it.
func (e *env) checkSchema(ctx context.Context, s migratable) error {
	sc, err := s.Schema(ctx)
	switch {
	case err != nil:
		return err
	case sc.Newer:
		return e.newerSchema(sc)
	case sc.Current():
		return nil
	case sc.Version == 0:
		return fmt.Errorf("the database %s has no kycd schema yet: start kycd serve on it once, or run kycd migrate --database …, then try again", kycd.RedactURL(e.cfg.Database))
	}
	migrations := "migrations"
	if sc.Pending == 1 {
		migrations = "migration"
	}
	return fmt.Errorf("the database %s has schema version %d and this kycd needs %d (%d %s to apply): run this version's kycd migrate (or kycd serve) on it first; this command does not migrate",
		kycd.RedactURL(e.cfg.Database), sc.Version, sc.Latest, sc.Pending, migrations)
}

// checkNewer refuses a database that a newer build of kycd migrated: this
// build's queries do not know its schema, and writing with them could
// lose or garble what the newer one keeps.
func (e *env) checkNewer(ctx context.Context, s migratable) error {
	sc, err := s.Schema(ctx)
	if err != nil {
		return err
	}
	if sc.Newer {
		return e.newerSchema(sc)
	}
	return nil
}

// newerSchema is the refusal of a schema newer than this build's: both
// versions, and the two ways on.
func (e *env) newerSchema(sc kycd.Schema) error {
	return fmt.Errorf("the database %s has schema version %d, from a newer kycd: this kycd is %s and knows schema versions up to %d. "+
		"Run the newer kycd, or roll the schema back first with the newer kycd's migrate --to %d (the CHANGELOG says what that undoes), then start this one",
		kycd.RedactURL(e.cfg.Database), sc.Version, readBuild().Version, sc.Latest, sc.Latest)
}

func migrateCmd(e *env) *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the database schema, then exit",
		Long: `Create or update the database schema, then exit. kycd serve migrates at start
too; no other command migrates (they refuse a database whose schema is behind).
On PostgreSQL, replicas starting at once take turns under an advisory lock.

With --to N it moves the schema to version N instead: down to roll back an
upgrade (the down migrations of every version above N, newest first), or up to
N. Stop every kycd serve on the database first; it refuses while one runs.
Then start the kycd release whose schema is N (the CHANGELOG names each
release's schema version). A database a newer kycd migrated is rolled back with
that newer kycd, which has the migrations to undo.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if cmd.Flags().Changed("to") {
				return e.migrateTo(cmd.Context(), to)
			}
			s, err := e.openStore(cmd.Context(), migrating)
			if err != nil {
				return err
			}
			defer closeStore(s, &err)
			sc, err := s.(interface {
				Schema(context.Context) (kycd.Schema, error)
			}).Schema(cmd.Context())
			if err != nil {
				return err
			}
			db := kycd.RedactURL(e.cfg.Database)
			if e.cfg.JSON {
				return printJSON(e.stdout, map[string]any{"database": db, "schemaVersion": sc.Version})
			}
			fmt.Fprintf(e.stdout, "database is up to date: %s (schema version %d)\n", db, sc.Version)
			return nil
		},
	}
	e.use(cmd, storeFlags...)
	cmd.Flags().Int64Var(&to, "to", 0, "move the schema to this version (down to roll back an upgrade) instead of the latest")
	return cmd
}

// migrateTo is kycd migrate --to version: it moves the schema of a database
// no serve is using, down or up, and says what it ran.
// joinVersions lists schema versions for a message: "1, 2, …, 12".
func joinVersions(vs []int64) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, ", ")
}

func (e *env) migrateTo(ctx context.Context, version int64) (err error) {
	store, err := e.openStore(ctx, versioned)
	if err != nil {
		return err
	}
	defer closeStore(store, &err)
	s := store.(migratable)
	release, err := store.(kycd.Serving).ExcludeServing(ctx)
	if kycd.ErrorCode(err) == kycd.ECONFLICT {
		return fmt.Errorf("kycd serve (or kycd rebuild) is using the database of --database %s: stop every kycd serve on it first, since the running one's queries need the schema it started with", kycd.RedactURL(e.cfg.Database))
	}
	if err != nil {
		return err
	}
	defer func() { _ = release() }() // the lock ends with the process anyway
	before, err := s.Schema(ctx)
	switch {
	case err != nil:
		return err
	case before.Newer:
		return fmt.Errorf("the database %s has schema version %d, from a newer kycd: this kycd is %s and knows schema versions up to %d, so it does not have the down migrations to run; run migrate --to %d with the newer kycd",
			kycd.RedactURL(e.cfg.Database), before.Version, readBuild().Version, before.Latest, version)
	case version < 1:
		return fmt.Errorf("--to %d: the lowest schema version is 1 (version 0 would drop every table: to start afresh, use a new database)", version)
	case version > before.Latest:
		return fmt.Errorf("--to %d: this kycd knows schema versions 1 to %d; a later one needs a newer kycd", version, before.Latest)
	case !slices.Contains(before.Versions, version):
		return fmt.Errorf("--to %d: no migration has that number (they were numbered as work began); this kycd's schema versions are %s", version, joinVersions(before.Versions))
	}
	done, err := s.MigrateTo(ctx, version)
	db := kycd.RedactURL(e.cfg.Database)
	if !e.cfg.JSON {
		for _, m := range done {
			verb := "applied"
			if m.Down {
				verb = "rolled back"
			}
			fmt.Fprintf(e.stdout, "%s %s\n", verb, m.Name)
		}
	}
	if err != nil {
		return err
	}
	after, err := s.Schema(ctx)
	if err != nil {
		return err
	}
	if e.cfg.JSON {
		if done == nil {
			done = []kycd.Migrated{}
		}
		return printJSON(e.stdout, map[string]any{"database": db, "from": before.Version, "schemaVersion": after.Version, "migrations": done})
	}
	if len(done) == 0 {
		fmt.Fprintf(e.stdout, "nothing to do: %s is at schema version %d\n", db, after.Version)
		return nil
	}
	fmt.Fprintf(e.stdout, "schema version %d → %d: %s\n", before.Version, after.Version, db)
	return nil
}

// withStore adapts a command that reads or changes the database: it opens
// the existing database for run and closes it after.
func (e *env) withStore(run func(cmd *cobra.Command, args []string, store kycd.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) (err error) {
		store, err := e.openStore(cmd.Context(), existing)
		if err != nil {
			return err
		}
		defer closeStore(store, &err)
		e.waitProjected(cmd.Context(), store)
		ids := make([]string, len(args))
		for i, a := range args {
			ids[i] = canonicalID(a)
		}
		return run(cmd, ids, store)
	}
}

// canonicalID is id as stored: UUIDs in canonical lower case.
func canonicalID(id string) string {
	if u, err := uuid.Parse(id); err == nil {
		return u.String()
	}
	return id
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
	cmd := &cobra.Command{
		Use:   "rebuild",
		Short: "Re-derive sessions, subjects and history from the event log, without notifying again",
		Long: `Re-derive every session, subject level and history entry from the events
whose bodies are still in the log (within serve's --retention), e.g. after a
projection rule changed. No notification is sent again. Stop kycd serve
first: the projection is rebuilt in place. It also repairs a main file whose
projection is ahead of its event log (the log copied before the main file),
which serve refuses to start on: what the projection holds past the log's
newest entry is removed, since no entry can derive it again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			store, err := e.openStore(cmd.Context(), existing)
			if err != nil {
				return err
			}
			defer closeStore(store, &err)
			release, err := store.(kycd.Serving).ExcludeServing(cmd.Context())
			if kycd.ErrorCode(err) == kycd.ECONFLICT {
				return fmt.Errorf("kycd serve (or another rebuild) is using the database of --database %s: stop every kycd serve on it first, since rebuild rewrites the projection in place", kycd.RedactURL(e.cfg.Database))
			}
			if err != nil {
				return err
			}
			defer func() { _ = release() }() // the lock ends with the process anyway
			in, err := ingest.New(cmd.Context(), store, ingest.Options{MaxClockSkew: e.cfg.MaxClockSkew})
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
	e.use(cmd, append(storeFlags, "max-clock-skew")...)
	return cmd
}
