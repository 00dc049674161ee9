package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/server"
)

// The state stores of `polyroot server serve` (config: store).
const (
	storeBolt     = "bbolt"
	storePostgres = "postgres"
)

// envDatabaseURL holds the PostgreSQL connection string, which may hold a password: it
// comes from the environment (or the file ENV_FILE names), or from the config file's
// database_url only without a password, and is never printed or logged.
const envDatabaseURL = "POLYROOT_SERVER_DATABASE_URL"

// serverStoreFlags are the state store settings of server serve.
func serverStoreFlags(file *configFile) []ucli.Flag {
	str, _ := flagMakers(file)
	return []ucli.Flag{
		str("store", "POLYROOT_SERVER_STORE", "store", storeBolt, "Service",
			"the state `STORE`: bbolt (server.db in --data-dir, one process) or postgres (shared by replicas; the database URL in $"+
				envDatabaseURL+" or its _FILE, or database_url in the config file without a password)", false),
		&ucli.BoolFlag{Name: "migrate", Category: "Service",
			Usage:   "with store postgres, apply the schema's migrations at start (as `polyroot server migrate` does) (config: migrate)",
			Sources: sources(file, "POLYROOT_SERVER_MIGRATE", "migrate")},
	}
}

// databaseURL returns the PostgreSQL connection string: from the environment, else
// the config file's database_url, which must not hold a password (a config file is
// read by more people and tools than a secret is).
func databaseURL(file *configFile) (string, error) {
	u, err := secretEnv(envDatabaseURL)
	if err != nil || u != "" {
		return u, err
	}
	u, _ = file.lookup("database_url")
	if u == "" {
		return "", fmt.Errorf("store postgres needs the database URL: set $%s (or $%s_FILE), or database_url in the config file", envDatabaseURL, envDatabaseURL)
	}
	if _, err := pgconn.ParseConfig(u); err != nil {
		return "", errors.New("database_url in the config file does not parse (a postgres:// URL or key=value settings)")
	} else if hasPassword(u) { // not ParseConfig's Password: that also comes from PGPASSWORD or a password file
		return "", fmt.Errorf("database_url in the config file holds a password: put the URL in $%s or the file $%s_FILE names instead", envDatabaseURL, envDatabaseURL)
	}
	return u, nil
}

func serverMigrateCommand() *ucli.Command {
	file := &configFile{kind: "server"}
	return &ucli.Command{
		Name:  "migrate",
		Usage: "bring the PostgreSQL state store's schema up to this version's",
		UsageText: "polyroot server migrate [--config FILE]\n\n" +
			"Examples:\n" +
			"   " + envDatabaseURL + "_FILE=/run/secrets/db-url polyroot server migrate --config server.toml\n",
		Description: "Applies the schema migrations that the database at the database URL lacks, in order,\n" +
			"each in one transaction; migrations only add, and replicas that run it (or serve\n" +
			"--migrate) at the same time apply each once. A server refuses a database whose schema\n" +
			"is not its version. The database URL comes from $" + envDatabaseURL + ", the file\n" +
			"$" + envDatabaseURL + "_FILE names (mode 0600 or 0400), or database_url in the config file\n" +
			"(without a password there). It is never printed.",
		Flags: []ucli.Flag{configFlag(file)},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if err := file.load(); err != nil {
				return err
			}
			u, err := databaseURL(file)
			if err != nil {
				return fmt.Errorf("server migrate: %w", err)
			}
			from, to, err := server.MigratePostgres(ctx, u)
			if err != nil {
				return fmt.Errorf("server migrate: %w", err)
			}
			if from == to {
				_, err = fmt.Fprintf(c.Root().Writer, "polyroot: the PostgreSQL schema is at version %d, this version's: nothing to do\n", to)
				return err
			}
			_, err = fmt.Fprintf(c.Root().Writer, "polyroot: PostgreSQL schema migrated from version %d to %d\n", from, to)
			return err
		},
	}
}
