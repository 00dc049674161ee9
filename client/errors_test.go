package client

import (
	"errors"
	"strings"
	"testing"
)

// TestWrongPINMessage: a refused login has one answer for every cause (the server
// must not tell them apart), worded so that it suggests none: a wrong PIN, or an
// identity the server does not accept; the tries left stay as they were.
func TestWrongPINMessage(t *testing.T) {
	const causes = "login refused: wrong PIN, or an identity the server does not accept (unknown, revoked or expired); "
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"ok/two-tries-left", &WrongPINError{TriesLeft: 2}, "client: " + causes + "2 tries left before the identity is blocked"},
		{"ok/one-try-left", &WrongPINError{TriesLeft: 1}, "client: " + causes + "1 try left before the identity is blocked"},
		{"ok/tries-not-said", &WrongPINError{TriesLeft: -1}, "client: " + causes + "check the PIN and try again"},
		{"ok/sentinel", ErrWrongPIN, "client: " + causes + "check the PIN and try again"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Fatalf("message %q\nwant    %q", got, tc.want)
			}
			if !errors.Is(tc.err, ErrWrongPIN) || strings.Contains(tc.err.Error(), "unknown identity)") {
				t.Fatalf("%v", tc.err)
			}
		})
	}
}
