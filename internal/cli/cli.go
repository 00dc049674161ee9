// Package cli wires the polyroot command's subcommands.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

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
		fmt.Fprintln(stderr, "polyroot:", sourceError(err))
		return 1
	}
	return 0
}

// newApp builds the command tree.
func newApp(stdout, stderr io.Writer) *ucli.Command {
	app := &ucli.Command{
		Name:      "polyroot",
		Usage:     "distributed trust for one backend: shared keys, mutual PIN login, anchored issuance logs",
		Writer:    stdout,
		ErrWriter: stderr,
		Description: "Examples:\n" +
			"   polyroot demo                                   # the whole story on a throw-away devnet\n" +
			"   polyroot devnet --dir ./devnet                  # a local domain to try the commands on\n" +
			"   polyroot help dta init                          # the help of one command\n" +
			"   polyroot client status --json                   # state for scripts (also audit, version)\n" +
			"   source <(polyroot completion bash)              # complete commands and flags in bash\n" +
			"   polyroot --version",
		Flags: []ucli.Flag{
			&ucli.BoolFlag{Name: "version", Usage: "print the version line (as polyroot version) and exit", Local: true},
		},
		EnableShellCompletion:           true,
		ConfigureShellCompletionCommand: configureCompletion,
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Bool("version") {
				return printVersion(c, false)
			}
			return groupAction(ctx, c)
		},
		Commands: []*ucli.Command{
			dtaCommand(),
			bundleCommand(),
			dkgCommand(),
			registrarCommand(),
			serverCommand(),
			clientCommand(),
			auditCommand(),
			ledgerCommand(),
			devnetCommand(),
			{
				Name:  "demo",
				Usage: "tell the whole story in eleven steps on devnets: shares, mutual login, lockout, interception, a rogue DTA, audit, revocation, threshold",
				Description: "Starts a devnet (three DTAs, the auth server over TLS, an embedded chain) in a\n" +
					"temporary directory, and plays alice's story on it, then bob's on a second devnet\n" +
					"whose key any 3 of its 5 DTAs hold, each step printed in plain words with its\n" +
					"figures. Takes about twenty seconds once built; removes the directory at the end.\n" +
					"Exits non-zero if any step does not behave as expected.\n\n" +
					"Example:\n   polyroot demo",
				Action: func(ctx context.Context, c *ucli.Command) error {
					return demo.Run(ctx, c.Root().Writer)
				},
			},
			probeCommand(),
			versionCommand(),
			helpCommand(),
		},
	}
	finishTree(app)
	return app
}
