package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/sori-dev/sori/internal/store/schema"
)

// migrations holds the schema as numbered files, NNNN_name.sql. A released
// file is never edited; a change is a new file.
//
//go:embed migrations/*.sql
var migrations embed.FS

func loadMigrations() ([]schema.Migration, error) { return schema.Load(migrations, "migrations") }

// migrate applies the migrations the database has not seen, each in its own
// transaction together with its schema_migrations row. It refuses a database
// written by a newer binary.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return err
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return err
	}
	pending, err := schema.Pending(ms, current)
	if err != nil {
		return err
	}
	for _, m := range pending {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, toMicros(now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return nil
}
