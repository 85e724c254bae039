package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sori-dev/sori/internal/store/schema"
)

// migrations holds the schema as numbered files, NNNN_name.sql. A released
// file is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

func loadMigrations() ([]schema.Migration, error) { return schema.Load(migrations, "migrations") }

// migrationLock is the key of the transaction-scoped advisory lock that
// serializes nodes migrating the same database at once ("sori" in ASCII).
const migrationLock = 0x736f7269

// migrate applies the migrations the database has not seen, all in one
// transaction that holds migrationLock, so that of several nodes starting
// together one migrates and the others then find nothing to do. It refuses
// a database written by a newer binary. Tables are created in the first
// schema of the connection's search_path.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		pending, err := schema.Pending(ms, current)
		if err != nil {
			return err
		}
		for _, m := range pending {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		return nil
	})
}
