package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"
)

// How the command tree behaves on a mistake. urfave/cli's own handling answers a
// misspelt subcommand with "No help topic for 'sevre'" (exit 3) or, when a flag
// follows it, with "flag provided but not defined" and the whole help page; it
// words flag errors as Go's flag package does (-flag, "time: invalid duration").
// finishTree replaces that, on every command, with one line that names the command,
// what is wrong and what exists.

// finishTree gives every command of the tree rooted at root the same behaviour on
// mistakes, and every flag whose usage already states its default in words no
// automatic "(default: …)" after it. It runs once, on the tree newApp built.
func finishTree(root *ucli.Command) {
	var walk func(c *ucli.Command)
	walk = func(c *ucli.Command) {
		c.OnUsageError = usageError
		if len(c.Commands) > 0 && c.Action == nil {
			// A group of commands: without this, urfave/cli's default action
			// would take an unknown name for a help topic.
			c.Action = groupAction
		}
		for _, f := range c.Flags {
			hideRepeatedDefault(f)
		}
		for _, sub := range c.Commands {
			walk(sub)
		}
	}
	walk(root)
}

// groupAction runs for a command that only groups others (polyroot dta): with no
// argument it shows its help, with one it says that no such command exists.
func groupAction(_ context.Context, c *ucli.Command) error {
	if c.Args().Present() {
		return unknownCommand(c, c.Args().First())
	}
	if c.Root() == c {
		return ucli.ShowRootCommandHelp(c)
	}
	return ucli.ShowSubcommandHelp(c)
}

// subcommands are the commands a user can name under c: the visible ones, without
// the built-in help command (it exists everywhere, so listing it says nothing).
func subcommands(c *ucli.Command) []*ucli.Command {
	var out []*ucli.Command
	for _, s := range c.Commands {
		if !s.Hidden && s.Name != "help" {
			out = append(out, s)
		}
	}
	return out
}

// unknownCommand is the error for a name that is no command under c, e.g.
// `no command "sevre" under "polyroot dta"; did you mean serve? commands: init, serve`.
func unknownCommand(c *ucli.Command, name string) error {
	var names, all []string
	for _, s := range subcommands(c) {
		names = append(names, s.Name)
		all = append(all, s.Names()...)
	}
	msg := fmt.Sprintf("no command %q under %q;", name, c.FullName())
	if s := closest(name, all); s != "" {
		msg += " did you mean " + s + "?"
	}
	return errors.New(msg + " commands: " + strings.Join(names, ", "))
}

// commandPath is c's path without the program's name, as the commands' own errors
// start ("dta serve: …"); "" for the root.
func commandPath(c *ucli.Command) string {
	p := c.Path()
	return strings.Join(p[1:], " ")
}

var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(.+)$`)
	invalidValue  = regexp.MustCompile(`^invalid value "(.*)" for flag -+([^:]+): `)
	missingValue  = regexp.MustCompile(`^flag needs an argument: -+(.+)$`)
	requiredFlags = regexp.MustCompile(`^Required flags? "(.+)" not set$`)
)

// usageError words a parse error of c's command line as one line: the command, what
// is wrong in the words of its flags (--name), a suggestion, and where the help is.
// A group command given an unknown name followed by flags lands here too (urfave/cli
// parses the flags before it looks the name up): it gets the unknown-command error.
func usageError(_ context.Context, c *ucli.Command, err error, _ bool) error {
	if first := c.Args().First(); len(subcommands(c)) > 0 && first != "" && c.Command(first) == nil {
		return unknownCommand(c, first)
	}
	msg := err.Error()
	switch {
	case undefinedFlag.MatchString(msg):
		name := undefinedFlag.FindStringSubmatch(msg)[1]
		msg = "unknown flag " + dashes(name)
		var names []string
		for _, f := range c.VisibleFlags() {
			names = append(names, f.Names()...)
		}
		if s := closest(name, names); s != "" {
			msg += "; did you mean " + dashes(s) + "?"
		}
	case invalidValue.MatchString(msg):
		m := invalidValue.FindStringSubmatch(msg)
		msg = fmt.Sprintf("%s %q: %s", dashes(m[2]), m[1], wantValue(c, m[2]))
	case missingValue.MatchString(msg):
		msg = dashes(missingValue.FindStringSubmatch(msg)[1]) + " needs a value"
	case requiredFlags.MatchString(msg):
		var names []string
		for _, n := range strings.Split(requiredFlags.FindStringSubmatch(msg)[1], ", ") {
			names = append(names, dashes(n))
		}
		if len(names) == 1 {
			msg = names[0] + " is required"
		} else {
			msg = strings.Join(names, " and ") + " are required"
		}
	}
	if p := commandPath(c); p != "" {
		msg = p + ": " + msg
	}
	return fmt.Errorf("%s (%s --help)", msg, c.FullName())
}

var sourceValue = regexp.MustCompile(`^could not parse "(.*)" as (\S+) value from (.+) for flag (\S+): `)

// sourceError words urfave/cli's error for a value from an environment variable or
// the config file that does not parse ("could not parse "abc" as uint32 value from
// environment variable … : strconv.ParseUint: …"): the source, the value, the flag
// it sets and what it takes. Other errors are returned as they are.
func sourceError(err error) error {
	m := sourceValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	want := "not a valid value"
	switch m[2] {
	case "time.Duration":
		want = "want a duration such as 500ms, 30s, 5m or 24h"
	case "int", "int64", "int32":
		want = "want a whole number in range"
	case "uint", "uint64", "uint32":
		want = "want a whole number, 0 or more, in range"
	case "float64":
		want = "want a number"
	case "bool":
		want = "want true or false"
	}
	return fmt.Errorf("%s: %q (for %s): %s", m[3], m[1], dashes(m[4]), want)
}

// dashes writes a flag name as it is typed: -d, --dir.
func dashes(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// wantValue says what the flag name of c takes, for a value it refused (urfave/cli
// quotes the Go parser's error, e.g. `time: invalid duration "x"`).
func wantValue(c *ucli.Command, name string) string {
	for _, f := range c.VisibleFlags() {
		for _, n := range f.Names() {
			if n != name {
				continue
			}
			switch f.Get().(type) {
			case time.Duration:
				return "want a duration such as 500ms, 30s, 5m or 24h"
			case int, int8, int16, int32, int64:
				return "want a whole number in range"
			case uint, uint8, uint16, uint32, uint64:
				return "want a whole number, 0 or more, in range"
			case float32, float64:
				return "want a number"
			case bool:
				return "want true or false"
			}
		}
	}
	return "not a valid value"
}

// closest returns the candidate a mistyped name most likely meant: one that starts
// with it (at least three letters typed), or one within a small edit distance
// (a swapped pair of letters counts as one edit); "" if none is close.
func closest(name string, candidates []string) string {
	best, bestDist := "", 0
	for _, c := range candidates {
		if len(name) >= 3 && strings.HasPrefix(c, name) {
			return c
		}
		d := editDistance(name, c)
		if d > 2 || 3*d > len(c) {
			continue
		}
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b: insertions,
// deletions, substitutions and transpositions of adjacent letters each cost one.
func editDistance(a, b string) int {
	x, y := []rune(a), []rune(b)
	// d[i][j] is the distance between x[:i] and y[:j].
	d := make([][]int, len(x)+1)
	for i := range d {
		d[i] = make([]int, len(y)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(x); i++ {
		for j := 1; j <= len(y); j++ {
			cost := 1
			if x[i-1] == y[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && x[i-1] == y[j-2] && x[i-2] == y[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(x)][len(y)]
}

// docFlag is a flag that help can describe.
type docFlag interface {
	ucli.Flag
	ucli.DocGenerationFlag
}

// wordedDefault shows a flag in help without the automatic "(default: …)": its
// usage already says what happens by default, in words (the client directory's
// "(default: polyroot under $XDG_CONFIG_HOME …)", "0: the server's default"), and
// the automatic value would say it a second time, or contradict it ("(default: 0)").
type wordedDefault struct{ docFlag }

func (wordedDefault) IsDefaultVisible() bool { return false }

// hideRepeatedDefault hides f's automatic default when its usage states one.
func hideRepeatedDefault(f ucli.Flag) {
	d, ok := f.(docFlag)
	s, settable := f.(ucli.StringerSetter)
	if !ok || !settable || !strings.Contains(d.GetUsage(), "default") {
		return
	}
	if m, ok := f.(ucli.DocGenerationMultiValueFlag); ok && m.IsMultiValueFlag() {
		return // the wrapper would hide that it repeats
	}
	s.SetStringer(func(ucli.Flag) string { return ucli.FlagStringer(wordedDefault{d}) })
}

// helpCommand replaces urfave/cli's root help command, which shows only the first
// name it is given: `polyroot help dta init` showed the help of dta.
func helpCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "help",
		Aliases:   []string{"h"},
		Usage:     "show the commands, or the help of one: polyroot help dta init",
		ArgsUsage: "[COMMAND [SUBCOMMAND]]",
		HideHelp:  true,
		// Flags are not parsed, so that `polyroot help --help` shows the commands too.
		SkipFlagParsing: true,
		Action: func(ctx context.Context, c *ucli.Command) error {
			parent := c.Root()
			args := c.Args().Slice()
			if n := len(args); n > 0 && (args[n-1] == "--help" || args[n-1] == "-h") {
				args = args[:n-1] // `help dta --help` is `help dta`
			}
			if len(args) == 0 {
				return ucli.ShowRootCommandHelp(parent)
			}
			for i, name := range args {
				sub := parent.Command(name)
				if sub == nil || sub.Hidden || name == "help" || name == "h" {
					return unknownCommand(parent, name)
				}
				if i == len(args)-1 {
					return ucli.ShowCommandHelp(ctx, parent, name)
				}
				parent = sub
			}
			return nil
		},
	}
}
