package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	ucli "github.com/urfave/cli/v3"
	"golang.org/x/term"
)

// pinFlag is --pin-stdin, for scripts; people at a terminal are prompted instead.
func pinFlag() *ucli.BoolFlag {
	return &ucli.BoolFlag{Name: "pin-stdin", Usage: "read the PIN from the first line of standard input (for scripts; at a terminal you are prompted)"}
}

// readPIN reads a PIN: from the first line of standard input with --pin-stdin; else,
// when standard input is a terminal, at a prompt with echo off, twice when confirm (a
// new PIN at enrolment), so that a typo does not become the PIN. Otherwise it is an
// error: a PIN is never a flag.
func readPIN(c *ucli.Command, confirm bool) ([]byte, error) {
	if c.Bool("pin-stdin") {
		return readSecretLine(c.Root().Reader, "PIN")
	}
	tty, ok := terminalInput(c.Root().Reader)
	if !ok {
		return nil, errors.New("give the PIN on standard input with --pin-stdin (never as a flag), or run at a terminal to be prompted")
	}
	prompt := func(text string) ([]byte, error) {
		fmt.Fprint(c.Root().ErrWriter, text)
		pin, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(c.Root().ErrWriter)
		if err != nil {
			return nil, fmt.Errorf("reading the PIN from the terminal: %w", err)
		}
		if len(pin) == 0 {
			return nil, errors.New("no PIN entered")
		}
		return pin, nil
	}
	pin, err := prompt("PIN: ")
	if err != nil || !confirm {
		return pin, err
	}
	again, err := prompt("PIN again: ")
	defer clear(again)
	if err != nil {
		clear(pin)
		return nil, err
	}
	if !bytes.Equal(pin, again) {
		clear(pin)
		return nil, errors.New("the two PINs differ; nothing was sent, run the command again")
	}
	return pin, nil
}

// terminalInput returns r as a terminal, if it is one.
func terminalInput(r io.Reader) (*os.File, bool) {
	if r == nil {
		r = os.Stdin
	}
	f, ok := r.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}
