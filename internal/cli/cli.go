// Package cli wires the polyroot command's subcommands.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/demo"
)

// Main runs the command with args (args[0] is the program name) and returns the exit status.
// Cancelling ctx stops a long-running subcommand (dta serve, server serve) as SIGTERM does.
// Standard input (a PIN or a token, with --pin-stdin or --token-stdin) is os.Stdin.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return MainWithStdin(ctx, args, os.Stdin, stdout, stderr)
}

// MainWithStdin is Main with stdin as the standard input.
func MainWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	app.Reader = stdin
	if err := app.Run(ctx, args); err != nil {
		fmt.Fprintln(stderr, "polyroot:", err)
		return 1
	}
	return 0
}

// newApp builds the command tree.
func newApp(stdout, stderr io.Writer) *ucli.Command {
	return &ucli.Command{
		Name:      "polyroot",
		Usage:     "distributed trust for one backend: shared keys, mutual PIN login, anchored issuance logs",
		Writer:    stdout,
		ErrWriter: stderr,
		Commands: []*ucli.Command{
			dtaCommand(),
			bundleCommand(),
			registrarCommand(),
			serverCommand(),
			clientCommand(),
			auditCommand(),
			devnetCommand(),
			{
				Name:  "demo",
				Usage: "tell the whole story in one process: three DTAs, enrolment, mutual login, a wrong PIN",
				Description: "Runs every step in memory and prints what happens with the figures.\n" +
					"Exits non-zero if any step does not behave as expected.\n\n" +
					"Example:\n   polyroot demo",
				Action: func(ctx context.Context, c *ucli.Command) error {
					return demo.Run(ctx, c.Root().Writer)
				},
			},
			{
				Name:        "version",
				Usage:       "print the version",
				Description: "Example:\n   polyroot version",
				Action: func(ctx context.Context, c *ucli.Command) error {
					_, err := fmt.Fprintln(c.Root().Writer, "polyroot", version())
					return err
				},
			},
		},
	}
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
