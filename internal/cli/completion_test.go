package cli

import (
	"strings"
	"testing"
)

// TestCompletion: `polyroot completion SHELL` prints a script that asks polyroot for
// the words, and polyroot answers those requests with the subcommands and flags.
func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stdout, each
	}{
		{"ok/bash", []string{"completion", "bash"}, []string{"complete -o bashdefault -o default -F __polyroot_bash_autocomplete polyroot", "--generate-shell-completion"}},
		{"ok/zsh", []string{"completion", "zsh"}, []string{"#compdef polyroot", "--generate-shell-completion"}},
		{"ok/fish", []string{"completion", "fish"}, []string{"complete -c polyroot", "--generate-shell-completion"}},
		{"ok/help-has-examples", []string{"completion", "--help"}, []string{"source <(polyroot completion bash)", "Examples:"}},
		{"ok/subcommands", []string{"dta", "--generate-shell-completion"}, []string{"init:", "serve:"}},
		{"ok/nested-subcommands", []string{"client", "permits", "--generate-shell-completion"}, []string{"renew:", "refresh:"}},
		{"ok/flags", []string{"client", "status", "--d", "--generate-shell-completion"}, []string{"--dir:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != 0 {
				t.Fatalf("polyroot %s: exit %d\n%s", strings.Join(tc.args, " "), code, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("polyroot %s: no %q in\n%s", strings.Join(tc.args, " "), w, out)
				}
			}
		})
	}
	// A completion request runs nothing: serve would start a DTA.
	if code, out, errOut := run("dta", "serve", "--generate-shell-completion"); code != 0 || strings.Contains(errOut, "no trust bundle") || strings.Contains(out, "ready") {
		t.Fatalf("a completion request ran the command: exit %d\n%s%s", code, out, errOut)
	}
}
