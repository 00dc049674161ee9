package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/demo"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Main(context.Background(), append([]string{"polyroot"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCommands(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"ok/version", []string{"version"}, 0, "polyroot "},
		{"ok/help-lists-demo", []string{"--help"}, 0, "demo"},
		{"ok/demo-help-has-example", []string{"demo", "--help"}, 0, "polyroot demo"},
		{"fail/unknown-flag", []string{"--no-such-flag"}, 1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantOut) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
		})
	}
}

// TestDemoHelpCountsSteps: polyroot --help and polyroot demo --help say as many steps
// as the demo tells.
func TestDemoHelpCountsSteps(t *testing.T) {
	words := map[int]string{9: "nine", 10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen"}
	want := "in " + words[demo.Steps()] + " steps"
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"ok/root-help", []string{"--help"}},
		{"ok/demo-help", []string{"demo", "--help"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, out, errOut := run(tc.args...); code != 0 || !strings.Contains(out, want) {
				t.Fatalf("exit %d, no %q (the demo tells %d steps)\n%s%s", code, want, demo.Steps(), out, errOut)
			}
		})
	}
}

// TestAdminTokenMissing: without an admin token an admin command names both ways to
// give it, the variable and the file the README uses, before it sends anything.
func TestAdminTokenMissing(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"fail/enrol", []string{"server", "enrol", "--server", "https://127.0.0.1:1", "alice@example.com"}},
		{"fail/unblock", []string{"server", "unblock", "--server", "https://127.0.0.1:1", "alice@example.com"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			want := "the admin token must be in the environment variable POLYROOT_ADMIN_TOKEN (never a flag), or in a file (mode 0600) that POLYROOT_ADMIN_TOKEN_FILE names"
			if code != 1 || !strings.Contains(errOut, want) {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
		})
	}
}
