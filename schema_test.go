package kycd_test

import (
	"context"
	"database/sql"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/kycd/kycd/internal/postgres/postgrestest"
	"github.com/kycd/kycd/internal/sqlite/sqlitetest"
)

// The claim mechanism is the one way the two schemas differ: SQLite keeps
// the log in a file of its own, written in seq order by one writer, so a
// watermark in the projection's file says what is projected; PostgreSQL
// replicas commit sequences out of order, so each log row says it.
var knownDifferences = map[string]string{
	"sqlite:projection_watermark":             "SQLite's log is in another file, committed in seq order: a watermark is exact",
	"sqlite:projection_watermark.id":          "",
	"sqlite:projection_watermark.seq":         "",
	"postgres:event_log.projected":            "PostgreSQL sequences commit out of order across replicas: each entry is marked",
	"postgres:index event_log_unprojected":    "",
	"postgres:index event_log_unprojected_id": "replicas share the log: a retry on another replica is found before projection",
}

// TestSchemasHoldTheSameTablesAndColumns proves that both stores keep the
// same tables, columns and named indexes, so a rule written once applies to both.
func TestSchemasHoldTheSameTablesAndColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kycd.db")
	sqlitetest.OpenPath(t, path).Close()
	lite := map[string]bool{}
	for _, file := range []string{path, path + "-log"} {
		db, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var table, column string
		eachRow(t, db, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE 'goose_%'`,
			func() {
				lite["sqlite:"+table] = true
				lite["sqlite:"+table+"."+column] = true
			}, &table, &column)
		// Named indexes; those of PRIMARY KEY and UNIQUE are implied by
		// the columns' constraints and named by each engine its own way.
		var name string
		eachRow(t, db, `SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'`,
			func() { lite["sqlite:index "+name] = true }, &name)
	}

	u := postgrestest.URL(t)
	postgrestest.Open(t, u).Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name NOT LIKE 'goose_%'`)
	if err != nil {
		t.Fatal(err)
	}
	pg := map[string]bool{}
	for rows.Next() {
		var table, column string
		if err := rows.Scan(&table, &column); err != nil {
			t.Fatal(err)
		}
		pg["postgres:"+table] = true
		pg["postgres:"+table+"."+column] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	idx, err := conn.Query(ctx, `SELECT i.indexname FROM pg_indexes i
		WHERE i.schemaname = current_schema() AND i.tablename NOT LIKE 'goose_%' AND NOT EXISTS (
			SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname AND c.contype IN ('p', 'u'))`)
	if err != nil {
		t.Fatal(err)
	}
	for idx.Next() {
		var name string
		if err := idx.Scan(&name); err != nil {
			t.Fatal(err)
		}
		pg["postgres:index "+name] = true
	}
	if err := idx.Err(); err != nil {
		t.Fatal(err)
	}

	var missing []string
	for k := range lite {
		name := strings.TrimPrefix(k, "sqlite:")
		if _, known := knownDifferences[k]; !known && !pg["postgres:"+name] {
			missing = append(missing, "PostgreSQL lacks "+name)
		}
	}
	for k := range pg {
		name := strings.TrimPrefix(k, "postgres:")
		if _, known := knownDifferences[k]; !known && !lite["sqlite:"+name] {
			missing = append(missing, "SQLite lacks "+name)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the schemas differ:\n%s", strings.Join(missing, "\n"))
	}
	for k := range maps.Keys(knownDifferences) {
		if !lite[k] && !pg[k] {
			t.Errorf("known difference %s is in neither schema any more: remove it from the list", k)
		}
	}
}

// eachRow runs q on db, scans every row into dest and calls row after each.
func eachRow(t *testing.T, db *sql.DB, q string, row func(), dest ...any) {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		row()
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}
