package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"syscall"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/devnet"
)

// devnetCommand is `polyroot devnet`.
func devnetCommand() *ucli.Command {
	flags := []ucli.Flag{
		&ucli.StringFlag{Name: "dir", Usage: "the devnet's `DIR`", Required: true},
		&ucli.IntFlag{Name: "dtas", Usage: "the number of DTAs, `N`, 2 to 16 (first start; default 3)"},
		&ucli.IntFlag{Name: "threshold", Aliases: []string{"t"}, Usage: "a threshold domain: any `T` of the N DTAs make the keys, from shares the DTAs make with a distributed key generation (first start; default: additive, all N needed)"},
		&ucli.IntFlag{Name: "base-port", Usage: "the auth server listens on `PORT`, DTA i on PORT+i, their metrics on PORT+N+1 (server) and PORT+N+1+i, the embedded chain's JSON-RPC on PORT+2N+2, the example OIDC app (examples/relying-party) is registered at PORT+2N+3 (first start; default free ports)"},
		&ucli.StringFlag{Name: "chain", Value: "embedded", Usage: "`CHAIN` the DTAs anchor their logs on: embedded (in memory) or rpc"},
		&ucli.StringFlag{Name: "rpc-url", Usage: "rpc chain: the JSON-RPC endpoint's `URL`"},
		&ucli.StringFlag{Name: "chain-key-file", Aliases: []string{"key"}, TakesFile: true,
			Usage: "rpc chain: `FILE` (hex, mode 0600) with the key of a funded account that deploys the contract and funds the anchoring keys"},
		&ucli.StringFlag{Name: "store", Value: storeBolt, Usage: "the auth server's state `STORE`: bbolt (a file in DIR) or postgres (--database-url)"},
		&ucli.StringFlag{Name: "database-url", Usage: "postgres store: the database's `URL`, without a password (one with a password goes in $" +
			envDatabaseURL + " or the file $" + envDatabaseURL + "_FILE names)"},
		&ucli.BoolFlag{Name: "insecure-http", Usage: "serve the auth server over plain HTTP, FOR TESTS ONLY (no TLS, no channel binding)"},
		&ucli.DurationFlag{Name: "anchor-period", Value: 10 * time.Second, Usage: "how often the DTAs anchor their logs"},
		&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT` on stderr: json or text"},
		&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`"},
	}
	for _, f := range keystoreFlags(nil) {
		if f.Names()[0] != "keystore-dir" { // the devnet's file keystores are in --dir
			flags = append(flags, f)
		}
	}
	return &ucli.Command{
		Name:  "devnet",
		Usage: "run a local domain in one process: its DTAs (three by default), the auth server, a chain",
		Description: "On first start in an empty directory D it creates the registrar key, the DTAs'\n" +
			"keys, the trust bundle (D/bundle.json, D/bundle.sha256), the server key, an admin\n" +
			"token (D/admin-token), a devnet CA (D/ca.pem) and D/devnet.json with every URL;\n" +
			"then prints the next commands to try, and export lines for the variables they\n" +
			"read. A restart on the same D reuses all of it.\n\n" +
			"--dtas N runs N DTAs (three if not given). The domain is additive unless told: every DTA's\n" +
			"share is needed. With --threshold T any T of them suffice: on the first start the\n" +
			"DTAs make their master shares among themselves with a distributed key generation\n" +
			"over HTTP on loopback (no one, the devnet included, ever holds the domain key) and\n" +
			"its transcript is kept in D/dkg-transcript.json.\n\n" +
			"The auth server serves HTTPS with a certificate of the devnet CA (limited to\n" +
			"loopback names): the printed commands trust it with --ca-file D/ca.pem.\n\n" +
			"The DTAs anchor their logs on an embedded in-memory chain (new on each start:\n" +
			"the logs are anchored again), served over JSON-RPC on loopback for audits\n" +
			"(rpc_url and contract in devnet.json; polyroot audit, client verify-issuance\n" +
			"--fetch), or, with --chain rpc, on a real one: the account of\n" +
			"--chain-key-file deploys the contract once (kept in devnet.json) and funds the\n" +
			"DTAs' anchoring keys. Secrets are in file keystores in D, or in Vault with\n" +
			"--keystore vault (under --vault-path/dta-1 … dta-N and --vault-path/server; the\n" +
			"token in $" + envVaultToken + ").\n\n" +
			"The auth server keeps its state in D (bbolt), or with --store postgres in a\n" +
			"PostgreSQL database whose schema the devnet migrates first (as `server serve\n" +
			"--migrate` does). Its URL is --database-url, without a password, or\n" +
			"$" + envDatabaseURL + ", or the file $" + envDatabaseURL + "_FILE\n" +
			"names, with one; it is never printed. A devnet keeps the store of its first start.\n\n" +
			"FOR LOCAL USE ONLY: the DTAs serve plain HTTP on loopback, and the keystore\n" +
			"passphrase, the registrar key, the anchoring keys, the devnet CA's key and the\n" +
			"admin token are stored in D (mode 0600).\n\n" +
			"Examples:\n" +
			"   polyroot devnet --dir ./devnet --base-port 8440\n" +
			"   polyroot devnet --dir ./devnet5 --dtas 5 --threshold 3   # any 3 of 5 DTAs suffice\n" +
			"   polyroot devnet --dir ./devnet --chain rpc --rpc-url http://127.0.0.1:8545 --key owner.key\n" +
			"   VAULT_TOKEN=… polyroot devnet --dir ./devnet --keystore vault --vault-addr http://127.0.0.1:8200 --vault-path devnet\n" +
			"   polyroot devnet --dir ./devnet --store postgres --database-url 'postgres://polyroot@127.0.0.1:5432/devnet?sslmode=disable'\n" +
			"   " + envDatabaseURL + "_FILE=db-url polyroot devnet --dir ./devnet --store postgres",
		Flags: flags,
		Action: func(ctx context.Context, c *ucli.Command) error {
			log, err := newLogger(c.String("log-format"), c.String("log-level"), c.Root().ErrWriter)
			if err != nil {
				return err
			}
			opts := devnet.Options{Dir: c.String("dir"), DTAs: int(c.Int("dtas")), Threshold: int(c.Int("threshold")), BasePort: int(c.Int("base-port")), Logger: log, Out: c.Root().Writer,
				Chain: c.String("chain"), RPCURL: c.String("rpc-url"), KeyFile: c.String("chain-key-file"),
				AnchorPeriod: c.Duration("anchor-period"), PlainHTTP: c.Bool("insecure-http"), WebDir: exeDir()}
			opts.ScryptLogN, _ = strconv.Atoi(os.Getenv(envScryptLogN))
			if opts.Store, opts.DatabaseURL, err = devnetStore(c); err != nil {
				return err
			}
			switch typ := c.String("keystore"); typ {
			case "file":
			case "vault":
				cfg, err := vaultConfig(c)
				if err != nil {
					return err
				}
				opts.Vault = &cfg
			default:
				return fmt.Errorf("--keystore %q: want file or vault", typ)
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return devnet.Run(ctx, opts)
		},
	}
}

// devnetStore resolves --store and the database URL of the postgres store: from
// --database-url, which must not hold a password (a command line is visible to every
// user of the machine), or from the environment as server serve reads it.
func devnetStore(c *ucli.Command) (store, dbURL string, err error) {
	flag := c.String("database-url")
	switch store = c.String("store"); store {
	case storeBolt:
		if flag != "" {
			return "", "", errors.New("--database-url is for --store postgres")
		}
		return store, "", nil
	case storePostgres:
	default:
		return "", "", fmt.Errorf("--store %q: want %s or %s", store, storeBolt, storePostgres)
	}
	env, err := secretEnv(envDatabaseURL)
	switch {
	case err != nil:
		return "", "", err
	case flag != "" && env != "":
		return "", "", fmt.Errorf("--store postgres: the database URL is both in --database-url and in $%s: give it once", envDatabaseURL)
	case env != "":
		return store, env, nil
	case flag == "":
		return "", "", fmt.Errorf("--store postgres needs the database URL: --database-url URL (without a password), or $%s (or $%s_FILE) with one", envDatabaseURL, envDatabaseURL)
	case hasPassword(flag):
		return "", "", fmt.Errorf("--database-url holds a password, which a command line shows to every user of the machine: put the URL in $%s or the file $%s_FILE names instead", envDatabaseURL, envDatabaseURL)
	}
	return store, flag, nil
}

// hasPassword reports whether a PostgreSQL connection string (a URL or key=value
// settings) holds a password itself; pgconn.ParseConfig would also take one from
// PGPASSWORD or a password file.
func hasPassword(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		_, set := u.User.Password()
		return set || u.Query().Has("password")
	}
	return regexp.MustCompile(`(^|\s)password\s*=`).MatchString(s)
}
