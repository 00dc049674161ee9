package cli

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	ucli "github.com/urfave/cli/v3"
)

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
			var wg sync.WaitGroup
			closeTTY := func() {}
			switch {
			case tc.typed != nil:
				ptm, tty, err := pty.Open()
				if err != nil {
					t.Fatal(err)
				}
				defer ptm.Close()
				cmd.Reader, cmd.ErrWriter = tty, tty
				wg.Go(func() { io.Copy(&screen, ptm) })
				go func() {
					for _, line := range tc.typed {
						time.Sleep(50 * time.Millisecond) // after the prompt turned echo off
						ptm.Write([]byte(line + "\r"))
					}
				}()
				closeTTY = func() { tty.Close(); wg.Wait() } // the copy ends when the terminal closes
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
