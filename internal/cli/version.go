package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/pairing"
)

// buildVersion is set at link time by `make build` and the container build
// (-ldflags "-X github.com/polyroot/polyroot/internal/cli.buildVersion=…"), because a
// binary built from a checkout has no module version and, with -buildvcs=false or
// without .git (as in a container build), no VCS revision either.
var buildVersion string

func versionCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "version",
		Usage: "print the version, the source revision, the Go version and the protocol version",
		UsageText: "polyroot version [--json]\n\n" +
			"Examples:\n" +
			"   polyroot version\n" +
			"   polyroot v0.3.0 (rev 3f1c2a9b7d10, 2026-11-22) go1.26.8 protocol polyroot/v2\n" +
			"   polyroot --version\n" +
			"   polyroot version --json | jq -r .protocol",
		Description: "Prints one line: the release (or the build's `git describe`), the VCS revision and\n" +
			"commit date when the build recorded them, the Go toolchain, and the login protocol's\n" +
			"version, which must match between clients and servers of one domain.\n" +
			"polyroot --version prints the same line. --json prints an object with the fields\n" +
			"version, revision (in full), time (the commit's, RFC 3339), modified, go and protocol;\n" +
			"revision, time and modified are left out when the build did not record them.",
		Flags: []ucli.Flag{jsonFlag("print a JSON object")},
		Action: func(ctx context.Context, c *ucli.Command) error {
			return printVersion(c, c.Bool("json"))
		},
	}
}

// jsonFlag is the --json flag of a command that reports state: its output for
// scripts, stable where the text is for people.
func jsonFlag(usage string) *ucli.BoolFlag {
	return &ucli.BoolFlag{Name: "json", Usage: usage}
}

// printVersion writes the version line, or its JSON form, to c's standard output.
func printVersion(c *ucli.Command, asJSON bool) error {
	info, _ := debug.ReadBuildInfo()
	v := readVersion(info, buildVersion, runtime.Version())
	if asJSON {
		return writeJSON(c.Root().Writer, v)
	}
	_, err := fmt.Fprintln(c.Root().Writer, v.line())
	return err
}

// versionInfo is what `polyroot version` reports; its JSON form is --json's output.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Protocol string `json:"protocol"`
}

// readVersion takes the version (injected, else the module's, else "(devel)"), the
// VCS revision, commit time and modified flag when the build recorded them, the Go
// version and the protocol version.
func readVersion(info *debug.BuildInfo, injected, goVersion string) versionInfo {
	v := versionInfo{Version: injected, Go: goVersion, Protocol: pairing.LoginVersion}
	if v.Version == "" && info != nil && info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if info != nil {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					v.Time = t.UTC().Format(time.RFC3339)
				}
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	return v
}

// line is the one line `polyroot version` prints: the revision shortened to 12
// digits and the commit's date, as people read them.
func (v versionInfo) line() string {
	line := "polyroot " + v.Version
	if rev := v.Revision; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		detail := "rev " + rev
		if t, err := time.Parse(time.RFC3339, v.Time); err == nil {
			detail += ", " + t.Format(time.DateOnly)
		}
		if v.Modified {
			detail += ", modified"
		}
		line += " (" + detail + ")"
	}
	return line + " " + v.Go + " protocol " + v.Protocol
}

// versionLine is what `polyroot version` prints.
func versionLine(info *debug.BuildInfo, injected, goVersion string) string {
	return readVersion(info, injected, goVersion).line()
}

// writeJSON writes v as indented JSON and a newline, the form of every --json output.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
