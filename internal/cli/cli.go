// Package cli wires the polyroot command's subcommands.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/internal/demo"
	"github.com/polyroot/polyroot/pairing"
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
				Usage: "tell the whole story in nine steps on a devnet: shares, mutual login, lockout, interception, a rogue DTA, audit, revocation",
				Description: "Starts a devnet (three DTAs, the auth server over TLS, an embedded chain) in a\n" +
					"temporary directory, and plays alice's story on it, each step printed in plain\n" +
					"words with its figures. Takes about ten seconds; removes the directory at the end.\n" +
					"Exits non-zero if any step does not behave as expected.\n\n" +
					"Example:\n   polyroot demo",
				Action: func(ctx context.Context, c *ucli.Command) error {
					return demo.Run(ctx, c.Root().Writer)
				},
			},
			probeCommand(),
			{
				Name:  "version",
				Usage: "print the version, the source revision, the Go version and the protocol version",
				Description: "Prints one line: the release (or the build's `git describe`), the VCS revision and\n" +
					"commit date when the build recorded them, the Go toolchain, and the login protocol's\n" +
					"version, which must match between clients and servers of one domain.\n\n" +
					"Example:\n   polyroot version\n" +
					"   polyroot v0.3.0 (rev 3f1c2a9b7d10, 2026-11-22) go1.26.8 protocol polyroot/v1",
				Action: func(ctx context.Context, c *ucli.Command) error {
					info, _ := debug.ReadBuildInfo()
					_, err := fmt.Fprintln(c.Root().Writer, versionLine(info, buildVersion, runtime.Version()))
					return err
				},
			},
		},
	}
}

// buildVersion is set at link time by `make build` and the container build
// (-ldflags "-X github.com/polyroot/polyroot/internal/cli.buildVersion=…"), because a
// binary built from a checkout has no module version and, with -buildvcs=false or
// without .git (as in a container build), no VCS revision either.
var buildVersion string

// versionLine is what `polyroot version` prints: the version (injected, else the
// module's, else "(devel)"), the VCS revision and commit date when the build recorded
// them, the Go version and the protocol version.
func versionLine(info *debug.BuildInfo, injected, goVersion string) string {
	v := injected
	if v == "" && info != nil && info.Main.Version != "" {
		v = info.Main.Version
	}
	if v == "" {
		v = "(devel)"
	}
	var rev, date string
	modified := false
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					date = t.UTC().Format(time.DateOnly)
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	line := "polyroot " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		detail := "rev " + rev
		if date != "" {
			detail += ", " + date
		}
		if modified {
			detail += ", modified"
		}
		line += " (" + detail + ")"
	}
	return line + " " + goVersion + " protocol " + pairing.ProtocolVersion
}
