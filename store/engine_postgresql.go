package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// lookupFields are the fields that the store looks documents up by with an
// equality filter — by id, a customer's timeline, a user's references, an email —
// per collection; "_id" for every collection.
var lookupFields = map[string][]string{
	usersCollection:         {fieldEmail},
	customersCollection:     {fieldEmail, customerFieldOwnerID},
	interactionsCollection:  {interactionFieldCustomerID, interactionFieldUserID},
	refreshTokensCollection: {refreshFieldFamily, refreshFieldUserID},
}

// indexPostgreSQLLookups makes equality lookups use an index when `crm engine`
// stores its data in PostgreSQL.
//
// Why: FerretDB 1.24's PostgreSQL backend filters an equality as
// _jsonb->'field' @> 'value' (containment), which its own B-tree indexes on
// _jsonb->'field' cannot serve: every lookup by id read the whole table
// (measured: 8 ms at 10,000 customers, growing with the table). A GIN index on
// the same expression serves containment: 0.05 ms. FerretDB does not know these
// indexes; they are dropped with their table.
func indexPostgreSQLLookups(ctx context.Context, pgURL string) error {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())

	// Give way to the API: a build that cannot have its table at once is
	// tried again next round, instead of queueing behind the API's writes (and
	// the writes behind it).
	if _, err := conn.Exec(ctx, `SET lock_timeout = '1s'`); err != nil {
		return err
	}
	// Every FerretDB database is a schema holding a metadata table that maps
	// collections to tables.
	rows, err := conn.Query(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = '_ferretdb_database_metadata'`)
	if err != nil {
		return err
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	// A table dropped meanwhile, or one busy past lock_timeout, fails alone;
	// the others are indexed all the same.
	var failed []error
	for _, schema := range schemas {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT _jsonb->>'_id', _jsonb->>'table' FROM %s._ferretdb_database_metadata`, pgx.Identifier{schema}.Sanitize()))
		if err != nil {
			failed = append(failed, err)
			continue
		}
		type collection struct{ Name, Table string }
		collections, err := pgx.CollectRows(rows, pgx.RowToStructByPos[collection])
		if err != nil {
			failed = append(failed, err)
			continue
		}
		for _, c := range collections {
			for _, field := range append([]string{fieldID}, lookupFields[c.Name]...) {
				// Not CONCURRENTLY: a concurrent build waits for every open
				// transaction, FerretDB's own index creations among them, which
				// can deadlock with it. A plain build holds one lock and waits
				// for nothing once it has it; it delays the table's writes
				// only while it builds, once per table.
				q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %s ON %s USING gin ((_jsonb -> %s))`,
					pgx.Identifier{c.Table + "_" + field + "_lookup"}.Sanitize(),
					pgx.Identifier{schema, c.Table}.Sanitize(),
					quoteLiteral(field))
				if _, err := conn.Exec(ctx, q); err != nil {
					failed = append(failed, fmt.Errorf("index %s.%s on %s: %w", schema, c.Name, field, err))
				}
			}
		}
	}
	return errors.Join(failed...)
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
