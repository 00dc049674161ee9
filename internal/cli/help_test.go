package cli

import (
	"io"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"
)

// TestHelpHasExamples: every command's --help has a short description and an example.
func TestHelpHasExamples(t *testing.T) {
	var walk func(path []string, c *ucli.Command)
	walk = func(path []string, c *ucli.Command) {
		for _, sub := range c.Commands {
			if sub.Name == "help" {
				continue
			}
			p := append(append([]string{}, path...), sub.Name)
			t.Run(strings.Join(p, "-"), func(t *testing.T) {
				code, out, errOut := run(append(p, "--help")...)
				if code != 0 || sub.Usage == "" || !strings.Contains(out, "Example") || !strings.Contains(out, sub.Usage) {
					t.Fatalf("polyroot %s --help: exit %d, no usage line or example\n%s%s", strings.Join(p, " "), code, out, errOut)
				}
			})
			walk(p, sub)
		}
	}
	walk(nil, newApp(io.Discard, io.Discard))
}
