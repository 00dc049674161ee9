package client

import (
	"context"
	"errors"
	"testing"
)

// TestEnrollPINPolicy: a PIN below the bundle's policy, or one that is not text, is
// refused before anything is sent (the code stays usable), and the PIN is used in its
// NFKC form: full-width digits and a decomposed accent log in as the plain ones.
func TestEnrollPINPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code := e.enrolment(t, "ivan@example.com", false)
	for name, pin := range map[string]string{
		"fail/three-digits":      "123",
		"fail/three-characters":  "é12", // four bytes, three characters
		"fail/control":           "12\x0034",
		"fail/not-utf8":          "12\xff34",
		"fail/newline":           "1234\n",
		"fail/one-wide-ligature": "\ufdfa",                // 18 code points in NFKC
		"fail/decomposed":        "e\u0301e\u0301e\u0301", // 6 code points typed, 3 characters
		"fail/zero-width":        "1\u200b2\u200b3",       // 3 visible characters
	} {
		t.Run(name, func(t *testing.T) {
			err := e.open(t).Enroll(ctx, e.url, code, []byte(pin), false)
			if !errors.Is(err, ErrPINPolicy) {
				t.Fatalf("got %v", err)
			}
		})
	}
	c := e.open(t)
	if err := c.Enroll(ctx, e.url, code, []byte("１２３４"), false); err != nil { // full-width digits
		t.Fatalf("the code did not survive the refused PINs, or full-width digits were refused: %v", err)
	}
	if _, err := c.Login(ctx, e.url, []byte("1234")); err != nil {
		t.Fatalf("ASCII digits after full-width ones at enrolment: %v", err)
	}

	code = e.enrolment(t, "judy@example.com", false)
	c = e.open(t, WithReplace())
	if err := c.Enroll(ctx, e.url, code, []byte("caf\u00e9"), false); err != nil { // é composed
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, e.url, []byte("cafe\u0301")); err != nil { // e + combining acute
		t.Fatalf("a decomposed accent: %v", err)
	}
}
