package cli

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	ucli "github.com/urfave/cli/v3"

	"github.com/polyroot/polyroot/pairing"
)

// TestUsageMistakes: a misspelt command or flag gets one line on stderr that names
// the command, what is wrong and what exists; help finds every command.
func TestUsageMistakes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		code    int
		wantOut string // in stdout
		wantErr string // in stderr
		oneLine bool   // stderr is one line, stdout empty
	}{
		{"ok/--version", []string{"--version"}, 0, " protocol " + pairing.LoginVersion + "\n", "", false},
		{"ok/help-dta-init", []string{"help", "dta", "init"}, 0, "polyroot dta init - create this DTA's master share", "", false},
		{"ok/help-dta", []string{"help", "dta"}, 0, "polyroot dta - run a distributed trust authority", "", false},
		{"ok/help-help", []string{"help", "--help"}, 0, "COMMANDS:\n   dta", "", false},
		{"ok/help-dta-help", []string{"help", "dta", "--help"}, 0, "polyroot dta - run a distributed trust authority", "", false},
		{"ok/h-client-status", []string{"h", "client", "status"}, 0, "polyroot client status [--dir DIR]", "", false},
		{"ok/top-level-help-has-examples", []string{"--help"}, 0, "Examples:\n      polyroot demo", "", false},
		{"ok/group-without-command", []string{"dta"}, 0, "COMMANDS:\n   init", "", false},
		{"fail/misspelt-subcommand", []string{"dta", "sevre"}, 1, "",
			`polyroot: no command "sevre" under "polyroot dta"; did you mean serve? commands: init, serve, dkg, reshare, retire` + "\n", true},
		{"fail/misspelt-subcommand-then-flags", []string{"dta", "sevre", "--config", "dta-1.toml"}, 1, "",
			`no command "sevre" under "polyroot dta"; did you mean serve?`, true},
		{"fail/misspelt-command", []string{"clinet", "status"}, 1, "", `no command "clinet" under "polyroot"; did you mean client? commands: dta, bundle,`, true},
		{"fail/unknown-command-no-suggestion", []string{"server", "frobnicate"}, 1, "",
			`no command "frobnicate" under "polyroot server"; commands: provision, serve, migrate, enrol, enrolments, revoke, unblock, oidc-client` + "\n", true},
		{"fail/help-misspelt", []string{"help", "dta", "int"}, 1, "", `no command "int" under "polyroot dta"; did you mean init?`, true},
		{"fail/unknown-flag", []string{"client", "login", "--pin", "1234"}, 1, "",
			"client login: unknown flag --pin; did you mean --pin-stdin? (polyroot client login --help)", true},
		{"fail/bad-duration", []string{"probe", "--timeout", "5", "http://127.0.0.1:1/"}, 1, "",
			`probe: --timeout "5": want a duration such as 500ms, 30s, 5m or 24h`, true},
		{"fail/bad-number", []string{"dta", "serve", "--index", "two"}, 1, "", `dta serve: --index "two": want a whole number`, true},
		{"fail/missing-value", []string{"client", "status", "--dir"}, 1, "", "client status: --dir needs a value", true},
		{"fail/devnet-without-dir", []string{"devnet"}, 1, "", "devnet: --dir is required (polyroot devnet --help)", true},
		{"fail/completion-unknown-shell", []string{"completion", "tcsh"}, 1, "", `no command "tcsh" under "polyroot completion"; commands: bash, zsh, fish`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(out, tc.wantOut) || !strings.Contains(errOut, tc.wantErr) {
				t.Fatalf("polyroot %s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q",
					strings.Join(tc.args, " "), code, tc.code, out, errOut, tc.wantOut, tc.wantErr)
			}
			if tc.oneLine && (out != "" || strings.Count(errOut, "\n") != 1) {
				t.Fatalf("polyroot %s: want one line on stderr and nothing on stdout\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), out, errOut)
			}
			if strings.Contains(errOut, "flag provided but not defined") || strings.Contains(errOut, "Incorrect Usage") || strings.Contains(errOut, "No help topic") {
				t.Fatalf("urfave/cli's own wording:\n%s", errOut)
			}
		})
	}
}

// TestVersionForms: --version prints the line of `polyroot version`, and --json its
// fields.
func TestVersionForms(t *testing.T) {
	_, line, _ := run("version")
	if code, out, errOut := run("--version"); code != 0 || out != line {
		t.Fatalf("polyroot --version: exit %d, %q (stderr %q); polyroot version says %q", code, out, errOut, line)
	}
	code, out, errOut := run("version", "--json")
	var v map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("polyroot version --json: exit %d, %q (stderr %q)", code, out, errOut)
	}
	if v["go"] != runtime.Version() || v["protocol"] != pairing.LoginVersion || v["version"] == "" || !strings.HasPrefix(line, "polyroot "+v["version"].(string)+" ") {
		t.Fatalf("polyroot version --json: %v; line %q", v, line)
	}
}

// TestHelpDefaultsOnce: no flag's help states its default twice (in words in its usage
// and again as urfave/cli's "(default: …)").
func TestHelpDefaultsOnce(t *testing.T) {
	var walk func(path []string, c *ucli.Command)
	walk = func(path []string, c *ucli.Command) {
		for _, sub := range c.Commands {
			if sub.Name == "help" {
				continue
			}
			p := append(append([]string{}, path...), sub.Name)
			_, out, _ := run(append(p, "--help")...)
			for _, l := range strings.Split(out, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "-") && strings.Count(l, "default") > 1 {
					t.Errorf("polyroot %s --help: a default twice:\n%s", strings.Join(p, " "), l)
				}
			}
			walk(p, sub)
		}
	}
	walk(nil, newApp(io.Discard, io.Discard))
	// The default still shows where the usage does not state it.
	if _, out, _ := run("dta", "serve", "--help"); !strings.Contains(out, `(default: "json")`) {
		t.Errorf("dta serve --help lost the automatic defaults:\n%s", out)
	}
}

// TestConfigFileWording: a config file's wrong value is named by line and key, in
// TOML's words, not the decoder's Go types.
func TestConfigFileWording(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, kind, file, want string
	}{
		{"fail/string-for-number", "dta", "index = \"one\"\n", ", line 1, key index: the value is a string (in quotes); want a whole number"},
		{"fail/number-for-string", "server", "listen = 8440\n", ", line 1, key listen: the value is a whole number; want a string (in quotes)"},
		{"fail/table-key", "dta", "[log]\nformat = 3\n", ", line 2, key log.format: the value is a whole number; want a string (in quotes)"},
		{"fail/duration", "dta", "shutdown_timeout = \"5 s\"\n", `, line 1, key shutdown_timeout: not a duration "5 s": want a string such as "500ms", "30s", "5m" or "24h"`},
		{"fail/out-of-range", "dta", "index = 99999999999\n", ", line 1, key index: 99999999999 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, "/", "-")+".toml")
			if err := os.WriteFile(p, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := run(tc.kind, "serve", "--config", p, "--print-config")
			if code != 1 || errOut != "polyroot: config file "+p+tc.want+"\n" {
				t.Fatalf("exit %d\n%s\nwant %q", code, errOut, tc.want)
			}
			for _, goType := range []string{"int64", "uint32", "time: ", "toml: "} {
				if strings.Contains(errOut, goType) {
					t.Errorf("%q in %s", goType, errOut)
				}
			}
		})
	}
}

// TestEnvValueWording: a value from the environment that does not parse names the
// variable, the value, its flag and what it takes, not Go's parser.
func TestEnvValueWording(t *testing.T) {
	clearEnv(t)
	t.Setenv("POLYROOT_DTA_INDEX", "abc")
	want := `polyroot: environment variable "POLYROOT_DTA_INDEX": "abc" (for --index): want a whole number, 0 or more, in range` + "\n"
	if code, _, errOut := run("dta", "serve", "--print-config"); code != 1 || errOut != want {
		t.Fatalf("exit %d\n%s\nwant %s", code, errOut, want)
	}
	t.Setenv("POLYROOT_DTA_INDEX", "1")
	t.Setenv("POLYROOT_DTA_CHECKPOINT_INTERVAL", "2")
	want = `polyroot: environment variable "POLYROOT_DTA_CHECKPOINT_INTERVAL": "2" (for --checkpoint-interval): want a duration such as 500ms, 30s, 5m or 24h` + "\n"
	if code, _, errOut := run("dta", "serve", "--print-config"); code != 1 || errOut != want {
		t.Fatalf("exit %d\n%s\nwant %s", code, errOut, want)
	}
}
