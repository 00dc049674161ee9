// Command polyroot runs the parts of a polyroot domain: distributed trust authorities,
// the auth server, clients, the auditor, and a demo. Run `polyroot --help`.
package main

import (
	"context"
	"os"

	"github.com/polyroot/polyroot/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args, os.Stdout, os.Stderr))
}
