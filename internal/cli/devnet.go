package cli

import (
	"context"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/devnet"
)

// devnetCommand is `polyroot devnet`.
func devnetCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "devnet",
		Usage: "run a local domain in one process: three DTAs, the auth server, an embedded chain",
		Description: "On first start in an empty directory D it creates the registrar key, the DTAs'\n" +
			"keystores, the trust bundle (D/bundle.json, D/bundle.sha256), the server key,\n" +
			"an admin token (D/admin-token) and D/devnet.json with every URL; then prints\n" +
			"the next commands to try. A restart on the same D reuses all of it. The chain\n" +
			"is embedded and in memory: it is new on each start and the logs are anchored again.\n\n" +
			"FOR LOCAL USE ONLY: plain HTTP on loopback, and every secret (the keystore\n" +
			"passphrase, the registrar key, the chain keys, the admin token) is stored in D\n" +
			"with mode 0600.\n\n" +
			"Example:\n   polyroot devnet --dir ./devnet --base-port 8440",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "dir", Usage: "the devnet's `DIR`", Required: true},
			&ucli.IntFlag{Name: "base-port", Usage: "the auth server listens on `PORT`, DTA i on PORT+i (first start; default free ports)"},
			&ucli.StringFlag{Name: "log-format", Value: "text", Usage: "log `FORMAT` on stderr: json or text"},
			&ucli.StringFlag{Name: "log-level", Value: "info", Usage: "log `LEVEL`"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			log, err := newLogger(c.String("log-format"), c.String("log-level"), c.Root().ErrWriter)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			logN, _ := strconv.Atoi(os.Getenv(envScryptLogN))
			return devnet.Run(ctx, devnet.Options{Dir: c.String("dir"), BasePort: int(c.Int("base-port")),
				ScryptLogN: logN, Logger: log, Out: c.Root().Writer})
		},
	}
}
