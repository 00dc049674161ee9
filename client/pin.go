package client

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// ErrPINPolicy: the PIN chosen at enrolment is refused by the domain's policy (the
// bundle's min_pin_length) or is not text. Nothing was sent: choose another PIN.
var ErrPINPolicy = errors.New("client: the PIN does not meet the domain's PIN policy")

// normalizePIN returns the PIN as the protocol hashes it: the UTF-8 of its Unicode NFKC
// form, so that a PIN typed on another keyboard or input method (composed or
// decomposed accents, full-width digits) is the same PIN. Control characters are
// refused: no keypad produces them, and a terminal or a file may add them. The result
// is a new slice.
func normalizePIN(pin []byte) ([]byte, error) {
	if !utf8.Valid(pin) {
		return nil, fmt.Errorf("%w: it is not valid UTF-8 text", ErrPINPolicy)
	}
	out, err := nfkc(pin) // a copy: callers clear it, not their PIN
	if err != nil {
		return nil, err
	}
	for _, r := range string(out) {
		if unicode.IsControl(r) {
			return nil, fmt.Errorf("%w: it holds a control character", ErrPINPolicy)
		}
	}
	return out, nil
}

// choosePIN checks a new PIN against the bundle's policy and returns its normal form.
func (c *Client) choosePIN(pin []byte) ([]byte, error) {
	norm, err := normalizePIN(pin)
	if err != nil {
		return nil, err
	}
	if n, least := min(visibleChars(pin), visibleChars(norm)), c.pinnedBundle().PINPolicy(); n < least {
		return nil, fmt.Errorf("%w: at least %d characters, this one has %d", ErrPINPolicy, least, n)
	}
	return norm, nil
}

// visibleChars counts the characters of a PIN for the policy: code points, without
// invisible format characters (zero-width spaces and joiners). The policy takes the
// smaller count of the PIN as typed and of its normal form, so that neither a
// character that NFKC expands (U+FDFA is 18 code points) nor one typed decomposed
// counts as several.
func visibleChars(pin []byte) int {
	n := 0
	for _, r := range string(pin) {
		if !unicode.Is(unicode.Cf, r) {
			n++
		}
	}
	return n
}
