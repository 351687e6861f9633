package main

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/kycd/kycd/internal/postgres/postgrestest"
)

// latestSchema is the schema version this build's migrate brings db to.
func latestSchema(t *testing.T, db string) int64 {
	t.Helper()
	var m struct{ SchemaVersion int64 }
	jsonOf(t, &m, "migrate", "--database", db)
	if m.SchemaVersion < 9 {
		t.Fatalf("kycd migrate --json: schema version %d", m.SchemaVersion)
	}
	return m.SchemaVersion
}

// gooseExec runs one statement on goose's version table of db, as a newer
// kycd's migration (or an operator) would change it.
func gooseExec(t *testing.T, db, query string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		conn, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, strings.ReplaceAll(query, "$1", "?"), args...); err != nil {
			t.Fatal(err)
		}
		return
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		t.Fatal(err)
	}
}

// An older kycd on a database a newer one migrated refuses to start, and
// every other command that opens the database refuses too, naming both
// schema versions and what to do; the database keeps the newer schema.
func TestOlderKycdRefusesANewerSchema(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, db string) {
		latest := latestSchema(t, db)
		newer := latest + 3
		gooseExec(t, db, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, newer)

		for _, args := range [][]string{
			{"serve", "--addr", "127.0.0.1:0", "--ralio-secret", testSecret, "--admin-token", testToken},
			{"migrate"},
			{"tokens", "create", "ops", "--role", "viewer"},
			{"sessions", "list"},
			{"stats"},
			{"migrate", "--to", fmt.Sprint(latest - 1)},
		} {
			msg := wantCLIError(t, append(args, "--database", db)...)
			for _, want := range []string{fmt.Sprintf("schema version %d", newer), fmt.Sprintf("up to %d", latest), "newer kycd"} {
				if !strings.Contains(msg, want) {
					t.Errorf("kycd %s on a newer schema: %s\nwant it to say %q", strings.Join(args, " "), msg, want)
				}
			}
		}
		// Nothing was migrated or rolled back: the newer version is still
		// the newest.
		if got := gooseMax(t, db); got != newer {
			t.Errorf("after the refusals the schema version is %d, want %d", got, newer)
		}
		// Once the newer migration is gone (rolled back by the newer kycd),
		// this one starts.
		gooseExec(t, db, `DELETE FROM goose_db_version WHERE version_id = $1`, newer)
		if out := mustCLI(t, "sessions", "list", "--database", db); !strings.Contains(out, "no sessions") {
			t.Errorf("sessions list after the rollback printed:\n%s", out)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		check(t, "sqlite:"+filepath.Join(t.TempDir(), "kycd.db"))
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		check(t, postgrestest.URL(t))
	})
}

// gooseMax is the highest migration goose's table of db records.
func gooseMax(t *testing.T, db string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	const query = `SELECT max(version_id) FROM goose_db_version`
	var v int64
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		conn, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := conn.QueryRowContext(ctx, query).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, query).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// kycd migrate --to rolls an upgrade back with the down migrations, refused
// while serve runs, saying each migration it ran; serve brings the schema
// up again and what was received is still there.
func TestMigrateToRollsBack(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		s := startServer(t)
		db := "sqlite:" + s.DB
		sessionID := uuid.NewString()
		s.deliver(t, sessionEvent(uuid.NewString(), "kyc_session_verified", time.Now().UTC().Format(time.RFC3339), sessionID))
		eventually(t, "the session to be projected", func() bool {
			return s.api(t, "GET", "/api/v1/sessions/"+sessionID).status == 200
		})
		latest := latestSchema(t, db)

		versions := migrationVersions(t)
		msg := wantCLIError(t, "migrate", "--to", fmt.Sprint(versions[len(versions)-2]), "--database", db)
		if !strings.Contains(msg, "stop every kycd serve") {
			t.Errorf("migrate --to under a running serve: %s, want it refused", msg)
		}
		if err := s.stop(t); err != nil {
			t.Fatal(err)
		}
		checkMigrateTo(t, db, latest)

		again := serve(t, nil, "--addr", "127.0.0.1:0", "--database", db, "--ralio-secret", testSecret, "--admin-token", testToken)
		again.Token = testToken
		if got := again.session(t, sessionID); got.Status != "VERIFIED" {
			t.Errorf("after rolling back and up again the session is %+v", got)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		db := postgrestest.URL(t)
		latest := latestSchema(t, db)
		to := checkMigrateTo(t, db, latest)
		out := mustCLI(t, "migrate", "--to", fmt.Sprint(latest), "--database", db)
		for _, v := range migrationVersions(t) {
			if v <= to {
				continue
			}
			if !strings.Contains(out, fmt.Sprintf("applied %05d_", v)) {
				t.Errorf("migrate --to %d printed:\n%s\nwant it to name migration %d", latest, out, v)
			}
		}
		if out := mustCLI(t, "sessions", "list", "--database", db); !strings.Contains(out, "no sessions") {
			t.Errorf("sessions list after migrating up again printed:\n%s", out)
		}
	})
}

// migrationVersions are the numbers of this build's migrations, in
// order: both stores have the same (numbered as work began, so with gaps).
func migrationVersions(t *testing.T) []int64 {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "internal", "sqlite", "migrations", "*.sql"))
	if err != nil || len(files) < 3 {
		t.Fatalf("migrations: %v, %v", files, err)
	}
	var versions []int64
	for _, f := range files {
		var v int64
		if _, err := fmt.Sscanf(filepath.Base(f), "%05d_", &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		versions = append(versions, v)
	}
	slices.Sort(versions)
	return versions
}

// checkMigrateTo rolls db back from latest to the version two migrations
// before it and checks what kycd says and does: each migration named, the
// schema then behind, and the versions it refuses. It returns that version.
func checkMigrateTo(t *testing.T, db string, latest int64) int64 {
	t.Helper()
	versions := migrationVersions(t)
	if versions[len(versions)-1] != latest {
		t.Fatalf("the newest migration file is %d, kycd migrate says %d", versions[len(versions)-1], latest)
	}
	to := versions[len(versions)-3]
	out := mustCLI(t, "migrate", "--to", fmt.Sprint(to), "--database", db)
	for _, v := range versions[len(versions)-2:] {
		if !strings.Contains(out, fmt.Sprintf("rolled back %05d_", v)) {
			t.Errorf("migrate --to %d printed:\n%s\nwant it to name migration %d", to, out, v)
		}
	}
	if want := fmt.Sprintf("schema version %d → %d", latest, to); !strings.Contains(out, want) {
		t.Errorf("migrate --to %d printed:\n%s\nwant %q", to, out, want)
	}
	if out := mustCLI(t, "migrate", "--to", fmt.Sprint(to), "--database", db); !strings.Contains(out, "nothing to do") {
		t.Errorf("migrate --to %d a second time printed:\n%s", to, out)
	}
	msg := wantCLIError(t, "sessions", "list", "--database", db)
	if want := fmt.Sprintf("has schema version %d and this kycd needs %d", to, latest); !strings.Contains(msg, want) {
		t.Errorf("sessions list after the rollback: %s, want %q", msg, want)
	}
	bad := []int64{0, latest + 1}
	for v := int64(1); v < latest; v++ {
		if !slices.Contains(versions, v) {
			bad = append(bad, v) // a number no migration took
			break
		}
	}
	for _, bad := range bad {
		if msg := wantCLIError(t, "migrate", "--to", fmt.Sprint(bad), "--database", db); !strings.Contains(msg, fmt.Sprintf("--to %d", bad)) {
			t.Errorf("migrate --to %d: %s, want it to name the flag", bad, msg)
		}
	}
	return to
}
