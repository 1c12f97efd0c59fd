package store

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/opencrm/crm/store/testtool"
)

// runTestEngine runs RunEngine with cfg until the test ends and returns the URI
// to connect to, with the lookup indexes refreshed every 100 ms.
func runTestEngine(t *testing.T, cfg EngineConfig) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Listen, cfg.Logger, cfg.lookupIndexInterval = "127.0.0.1:0", quietLogger, 100*time.Millisecond
	uris := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- RunEngine(ctx, cfg, func(uri string) { uris <- uri }) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case uri := <-uris:
		return uri
	case err := <-done:
		t.Fatalf("RunEngine: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("RunEngine not ready")
	}
	return ""
}

// eventually retries check until it returns nil or the test timeout passes.
func eventually(t *testing.T, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The standalone engine on SQLite gives the collections that an API server
// creates the same _id lookup index as the embedded engine (indexIDLookups).
func TestRunEngineIndexesIDLookupsOnSQLite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	uri := runTestEngine(t, EngineConfig{DataDir: dir})
	s, err := Open(t.Context(), Config{URI: uri, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	mustCreateUser(t, s, "A", "a@example.com", RoleMember)

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "crm.sqlite")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	eventually(t, "lookup indexes on the standalone engine's tables", func() error {
		var tables, indexed int
		if err := db.QueryRow(`SELECT count(*) FROM _ferretdb_collections`).Scan(&tables); err != nil {
			return err
		}
		if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE '%_id_lookup'`).Scan(&indexed); err != nil {
			return err
		}
		if tables == 0 || indexed != tables {
			return fmt.Errorf("%d of %d tables have the _id lookup index", indexed, tables)
		}
		return nil
	})
}

// The standalone engine on PostgreSQL gives every collection GIN indexes on the
// fields the store looks documents up by, and FerretDB's lookups — an equality
// sent as _jsonb->$1 @> $2 — use them instead of reading the table.
func TestRunEngineIndexesLookupsOnPostgreSQL(t *testing.T) {
	t.Parallel()
	pgURL := testtool.PostgreSQL(t)
	uri := runTestEngine(t, EngineConfig{PostgreSQLURL: pgURL})
	dbName := fmt.Sprintf("lookups_%d", time.Now().UnixNano()%1e9)
	s, err := Open(t.Context(), Config{URI: uri, Database: dbName, Timeout: testTimeout, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = s.db.Drop(context.Background())
		s.Close(context.Background())
	}()
	u := mustCreateUser(t, s, "A", "a@example.com", RoleMember)
	c := &Customer{Name: "C", Email: "c@example.com", Status: StatusActive, OwnerID: &u.ID}
	if err := s.CreateCustomer(t.Context(), c); err != nil {
		t.Fatal(err)
	}

	conn, err := pgx.Connect(t.Context(), pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tableOf := func(coll string) (string, error) {
		var table string
		err := conn.QueryRow(t.Context(), fmt.Sprintf(`SELECT _jsonb->>'table' FROM %s._ferretdb_database_metadata WHERE _jsonb->>'_id' = $1`,
			pgx.Identifier{dbName}.Sanitize()), coll).Scan(&table)
		return table, err
	}
	want := map[string][]string{}
	for _, coll := range []string{usersCollection, customersCollection, interactionsCollection, refreshTokensCollection, idempotencyCollection} {
		want[coll] = append([]string{fieldID}, lookupFields[coll]...)
	}
	eventually(t, "lookup indexes on every collection", func() error {
		for coll, fields := range want {
			table, err := tableOf(coll)
			if err != nil {
				return fmt.Errorf("%s: %w", coll, err)
			}
			rows, err := conn.Query(t.Context(), `SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2`, dbName, table)
			if err != nil {
				return err
			}
			defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, f := range fields {
				if !slices.ContainsFunc(defs, func(d string) bool {
					return strings.Contains(d, "USING gin") && strings.Contains(d, fmt.Sprintf("(_jsonb -> '%s'::text)", f))
				}) {
					return fmt.Errorf("%s has no GIN index on %s: %q", coll, f, defs)
				}
			}
		}
		return nil
	})

	// FerretDB's query for a lookup by id, as it sends it, is served by the index.
	table, _ := tableOf(customersCollection)
	if _, err := conn.Exec(t.Context(), fmt.Sprintf(`PREPARE lookup(text, jsonb) AS SELECT _jsonb FROM %s WHERE _jsonb->$1 @> $2`,
		pgx.Identifier{dbName, table}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(t.Context(), `EXPLAIN EXECUTE lookup('_id', `+quoteLiteral(fmt.Sprintf("%q", c.ID.Hex()))+`)`)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "Index Scan") {
		t.Errorf("a lookup by id reads the table:\n%s", strings.Join(plan, "\n"))
	}
	// And the lookups still find what they look for.
	if got, err := s.GetCustomer(t.Context(), c.ID); err != nil || got.Email != c.Email {
		t.Errorf("GetCustomer = %+v, %v", got, err)
	}
	if _, err := s.GetCustomer(t.Context(), bson.NewObjectID()); err == nil {
		t.Error("GetCustomer of an unknown id found something")
	}
}
