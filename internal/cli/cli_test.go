package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
