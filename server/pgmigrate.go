package server

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgSchema holds the PostgreSQL schema's migrations, NNNN_name.sql, applied in order
// of NNNN; each is applied once, in one transaction with its row in polyroot_schema.
// A released migration is never edited: a change is a new file.
//
//go:embed pgschema/*.sql
var pgSchema embed.FS

type pgMigration struct {
	version int
	name    string
	sql     string
}

// pgMigrations returns the embedded migrations in order.
func pgMigrations() ([]pgMigration, error) {
	files, err := fs.Glob(pgSchema, "pgschema/*.sql")
	if err != nil {
		return nil, err
	}
	var out []pgMigration
	for _, f := range files {
		base := strings.TrimSuffix(path.Base(f), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("server: migration %s is not named NNNN_name.sql", f)
		}
		b, err := pgSchema.ReadFile(f)
		if err != nil {
			return nil, err
		}
		out = append(out, pgMigration{version: v, name: name, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b pgMigration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("server: migrations are not numbered 1, 2, …: %d is number %d", m.version, i+1)
		}
	}
	return out, nil
}

// pgSchemaVersion is the version this server needs: its newest migration.
func pgSchemaVersion() int {
	ms, err := pgMigrations()
	if err != nil || len(ms) == 0 {
		panic("server: the embedded PostgreSQL migrations are broken: " + fmt.Sprint(err))
	}
	return ms[len(ms)-1].version
}

// migrateLockID is the advisory lock that serialises migrations, so that replicas
// started together with --migrate apply each migration once.
const migrateLockID = 0x706f6c79726f6f74 // "polyroot"

// MigratePostgres brings the PostgreSQL schema at databaseURL up to this server's
// version and returns the versions before and after. Migrations only add: a database
// at a version newer than this server's is left alone (an error).
func MigratePostgres(ctx context.Context, databaseURL string) (from, to int, err error) {
	ms, err := pgMigrations()
	if err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return 0, 0, pgConnectError(err, databaseURL)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLockID)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS polyroot_schema (
			version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM polyroot_schema").Scan(&from); err != nil {
			return err
		}
		to = from
		if from > len(ms) {
			return fmt.Errorf("server: the PostgreSQL schema is at version %d, newer than this server's %d: upgrade the server", from, len(ms))
		}
		for _, m := range ms[from:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("server: migration %d (%s): %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO polyroot_schema (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return err
			}
			to = m.version
		}
		return nil
	})
	if err != nil {
		return from, from, err
	}
	return from, to, nil
}

// pgCurrentVersion is the schema version of the database q reaches (0: none).
func pgCurrentVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM polyroot_schema").Scan(&v)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table: never migrated
		return 0, nil
	}
	return v, err
}

// isEncodingError reports whether err is PostgreSQL refusing a value its text type
// cannot hold (SQLSTATE 22021: a NUL byte, or bytes that are not UTF-8), which bbolt
// keys take: for a lookup, such a key is simply in no row.
func isEncodingError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22021"
}

// pgConnectError is a connection error without the database URL's password (pgx
// leaves it out, but the error must not depend on that).
func pgConnectError(err error, databaseURL string) error {
	msg := err.Error()
	if cfg, perr := pgconn.ParseConfig(databaseURL); perr == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	} else if perr != nil {
		return errors.New("server: the database URL does not parse (a postgres:// URL or key=value settings)")
	}
	return fmt.Errorf("server: connecting to PostgreSQL: %s", msg)
}
