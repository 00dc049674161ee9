package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	ucli "github.com/urfave/cli/v3"
)

// typeAtTerminal makes a terminal cmd's input and error output, types lines at it
// (each after the prompt before it turned echo off) and copies what it shows to screen;
// the function it returns closes the terminal once cmd has run.
func typeAtTerminal(t *testing.T, cmd *ucli.Command, screen *bytes.Buffer, lines ...string) (closeTTY func()) {
	t.Helper()
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ptm.Close() })
	cmd.Reader, cmd.ErrWriter = tty, tty
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(screen, ptm) })
	go func() {
		for _, line := range lines {
			time.Sleep(50 * time.Millisecond)
			ptm.Write([]byte(line + "\r"))
		}
	}()
	return func() { tty.Close(); wg.Wait() } // the copy ends when the terminal closes
}

// TestPINPrompt: at a terminal the PIN is asked for at a prompt on stderr with echo off
// (twice for a new PIN); without a terminal, only --pin-stdin reads it.
func TestPINPrompt(t *testing.T) {
	cases := []struct {
		name    string
		confirm bool
		typed   []string // lines typed at the terminal; nil: no terminal
		stdin   string   // with --pin-stdin
		want    string
		wantErr string
	}{
		{name: "ok/prompt", typed: []string{"2468"}, want: "2468"},
		{name: "ok/confirm", confirm: true, typed: []string{"2468", "2468"}, want: "2468"},
		{name: "fail/confirm-differs", confirm: true, typed: []string{"2468", "2469"}, wantErr: "the two PINs differ"},
		{name: "fail/empty", typed: []string{""}, wantErr: "no PIN entered"},
		{name: "ok/pin-stdin", stdin: "1357\n", want: "1357"},
		{name: "fail/no-terminal", wantErr: "give the PIN on standard input with --pin-stdin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got []byte
			cmd := &ucli.Command{Name: "t", Flags: []ucli.Flag{pinFlag()},
				Action: func(_ context.Context, c *ucli.Command) (err error) {
					got, err = readPIN(c, tc.confirm)
					return err
				}}
			args := []string{"t"}
			var screen bytes.Buffer
			closeTTY := func() {}
			switch {
			case tc.typed != nil:
				closeTTY = typeAtTerminal(t, cmd, &screen, tc.typed...)
			case tc.stdin != "":
				cmd.Reader, cmd.ErrWriter = strings.NewReader(tc.stdin), io.Discard
				args = append(args, "--pin-stdin")
			default:
				cmd.Reader, cmd.ErrWriter = strings.NewReader("2468\n"), io.Discard
			}
			err := cmd.Run(context.Background(), args)
			closeTTY()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %q, %v", got, err)
			}
			if tc.typed != nil {
				prompts := strings.Count(screen.String(), "PIN")
				if strings.Contains(screen.String(), tc.want) || prompts != len(tc.typed) {
					t.Fatalf("the terminal showed %q: want %d prompts and no PIN", screen.String(), len(tc.typed))
				}
			}
		})
	}
}

// TestEnrolmentCode: the enrolment code comes from $POLYROOT_ENROLMENT_CODE (or the
// file its _FILE names), else at a terminal from a prompt with echo off; --code still
// works, with a warning that other users can read it.
func TestEnrolmentCode(t *testing.T) {
	const code = "K7QX-2J9M-4T8P"
	codeFile := filepath.Join(t.TempDir(), "code")
	if err := os.WriteFile(codeFile, []byte(code+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		typed    string // at a terminal; "" for none
		wantWarn bool
		wantErr  string
	}{
		{name: "ok/prompt", typed: code},
		{name: "ok/env", env: map[string]string{envEnrolmentCode: code}},
		{name: "ok/env-file", env: map[string]string{envEnrolmentCode + "_FILE": codeFile}},
		{name: "ok/flag-warns", args: []string{"--code", code}, wantWarn: true},
		{name: "fail/no-terminal", wantErr: "no enrolment code: give it in $" + envEnrolmentCode},
		{name: "fail/empty-prompt", typed: " ", wantErr: "no enrolment code entered"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, name := range []string{envEnrolmentCode, envEnrolmentCode + "_FILE"} {
				t.Setenv(name, tc.env[name])
				if tc.env[name] == "" {
					os.Unsetenv(name)
				}
			}
			var got string
			cmd := &ucli.Command{Name: "t", Flags: []ucli.Flag{codeFlag()},
				Action: func(_ context.Context, c *ucli.Command) (err error) {
					got, err = readEnrolmentCode(c)
					return err
				}}
			var screen, stderr bytes.Buffer
			closeTTY := func() {}
			if tc.typed != "" {
				closeTTY = typeAtTerminal(t, cmd, &screen, tc.typed)
			} else {
				cmd.Reader, cmd.ErrWriter = strings.NewReader(code+"\n"), &stderr
			}
			err := cmd.Run(context.Background(), append([]string{"t"}, tc.args...))
			closeTTY()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %q, %v; want %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != code {
				t.Fatalf("got %q, %v", got, err)
			}
			if warned := strings.Contains(stderr.String(), "--code is visible to other users"); warned != tc.wantWarn {
				t.Fatalf("stderr %q: warning %v, want %v", stderr.String(), warned, tc.wantWarn)
			}
			if tc.typed != "" && (strings.Contains(screen.String(), code) || !strings.Contains(screen.String(), "Enrolment code: ")) {
				t.Fatalf("the terminal showed %q: want the prompt and no code", screen.String())
			}
		})
	}
}
