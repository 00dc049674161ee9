package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

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
		pin, err := promptSecret(c, tty, text)
		if err == nil && len(pin) == 0 {
			err = errors.New("no PIN entered")
		}
		return pin, err
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

// promptSecret asks for a secret at terminal tty, with echo off, and reads one line.
func promptSecret(c *ucli.Command, tty *os.File, text string) ([]byte, error) {
	fmt.Fprint(c.Root().ErrWriter, text)
	secret, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(c.Root().ErrWriter)
	if err != nil {
		return nil, fmt.Errorf("reading from the terminal: %w", err)
	}
	return secret, nil
}

// envEnrolmentCode is where scripts give the enrolment code.
const envEnrolmentCode = "POLYROOT_ENROLMENT_CODE"

// codeFlag is --code, kept for scripts written before the prompt; its value shows in
// the process list, so readEnrolmentCode warns about it.
func codeFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "code", Usage: "the one-time enrolment `CODE`; other users of this machine can read a flag " +
		"while the command runs: give it in $" + envEnrolmentCode + " (or a file named by $" + envEnrolmentCode + "_FILE) or at the prompt instead"}
}

// readEnrolmentCode returns the enrolment code: from --code (with a warning: any local
// user can read a process's arguments, and whoever redeems the code first enrols as
// its owner), else from $POLYROOT_ENROLMENT_CODE or the file $POLYROOT_ENROLMENT_CODE_FILE
// names, else at a terminal from a prompt with echo off.
func readEnrolmentCode(c *ucli.Command) (string, error) {
	if code := c.String("code"); code != "" {
		fmt.Fprintf(c.Root().ErrWriter, "polyroot: warning: --code is visible to other users of this machine while the command runs, "+
			"and whoever redeems the code first enrols as you: give it in $%s or at the prompt instead\n", envEnrolmentCode)
		return code, nil
	}
	env, err := secretEnv(envEnrolmentCode)
	if err != nil {
		return "", err
	}
	if env = strings.TrimSpace(env); env != "" {
		return env, nil
	}
	tty, ok := terminalInput(c.Root().Reader)
	if !ok {
		return "", fmt.Errorf("no enrolment code: give it in $%s, or run at a terminal to be prompted (it comes from the registrar: polyroot server enrol)", envEnrolmentCode)
	}
	code, err := promptSecret(c, tty, "Enrolment code: ")
	if err != nil {
		return "", err
	}
	if s := strings.TrimSpace(string(code)); s != "" {
		return s, nil
	}
	return "", errors.New("no enrolment code entered")
}

// terminalInput returns r as a terminal, if it is one.
func terminalInput(r io.Reader) (*os.File, bool) {
	if r == nil {
		r = os.Stdin
	}
	f, ok := r.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}
