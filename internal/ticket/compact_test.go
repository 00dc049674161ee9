package ticket

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// compactToken signs claims JSON under header as Sign would.
func compactToken(header, claimsJSON string, key ed25519.PrivateKey) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(header))
	c := base64.RawURLEncoding.EncodeToString([]byte(claimsJSON))
	sig := ed25519.Sign(key, []byte(h+"."+c))
	return h + "." + c + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// errClass reduces a Verify error to what callers act on.
func errClass(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	}
	return "other: " + err.Error()
}

// sameAsJWT checks that the fast path, if it takes token, decides as golang-jwt does,
// and reports whether it took it.
func sameAsJWT(t *testing.T, token string, key ed25519.PublicKey, at time.Time) bool {
	t.Helper()
	c1, err1, ok := verifyCompact(token, key, at)
	if !ok {
		return false
	}
	c2, err2 := verifyJWT(token, key, at)
	if errClass(err1) != errClass(err2) {
		t.Fatalf("%s\nfast path: %v\ngolang-jwt: %v", token, err1, err2)
	}
	if err1 == nil && !reflect.DeepEqual(c1, c2) {
		t.Fatalf("%s\nfast path: %+v\ngolang-jwt: %+v", token, c1, c2)
	}
	return true
}

// TestVerifyCompact: the tickets Sign makes take the fast path, and it decides every
// case as golang-jwt does; other forms go to golang-jwt.
func TestVerifyCompact(t *testing.T) {
	for _, tk := range []Ticket{
		{Domain: "api.example.com", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(time.Hour)},
		{Domain: "api.example.com", Kind: KindPermit, IDHash: idh, SealKey: sealKey, FirstSlot: 10, LastSlot: 12, NotAfter: now.Add(time.Hour)},
		{Domain: "api.example.com", Kind: KindRevoke, IDHash: idh, NotAfter: now.Add(time.Hour)},
	} {
		s := sign(t, tk, priv)
		for _, at := range []time.Time{now, now.Add(time.Hour - time.Second), now.Add(time.Hour), now.Add(2 * time.Hour)} {
			if !sameAsJWT(t, s, pub, at) {
				t.Fatalf("a ticket from Sign does not take the fast path: %s", s)
			}
		}
		if !sameAsJWT(t, s, other.Public().(ed25519.PublicKey), now) {
			t.Fatal("fast path not taken with another key")
		}
		if got, err := Verify(s, pub, tk.Domain, tk.Kind, now); err != nil || got.Nonce == "" || got.SealKey != tk.SealKey || got.LastSlot != tk.LastSlot {
			t.Fatalf("Verify: %+v, %v", got, err)
		}
	}
	exp := now.Add(time.Hour).Unix()
	const h = `{"alg":"EdDSA","typ":"JWT"}`
	for _, tc := range []struct {
		header, claims string
		fast           bool
	}{
		{h, fmt.Sprintf(`{"kind":"client","aud":["api.example.com"],"exp":%d}`, exp), true},
		{h, fmt.Sprintf(` { "aud" : "api.example.com" , "exp" : %d , "nbf" : %d , "iat" : 0 } `, exp, now.Unix()+1), true},
		{h, fmt.Sprintf(`{"aud":[],"exp":%d,"first_slot":18446744073709551615}`, exp), true},
		{h, `{"aud":["a"]}`, true},                                                   // no exp
		{h, fmt.Sprintf(`{"exp":%d,"Kind":"client"}`, exp), false},                   // key case
		{h, fmt.Sprintf(`{"exp":%d,"exp":%d}`, exp, exp), false},                     // repeated key
		{h, fmt.Sprintf(`{"exp":%d,"x":1}`, exp), false},                             // unknown key
		{h, fmt.Sprintf(`{"exp":%d.5}`, exp), false},                                 // fraction
		{h, fmt.Sprintf(`{"exp":"%d"}`, exp), false},                                 // a string
		{h, fmt.Sprintf(`{"exp":%d,"first_slot":18446744073709551616}`, exp), false}, // overflow
		{h, fmt.Sprintf(`{"exp":%d,"sub":"a\u0062"}`, exp), false},                   // escape
		{h, fmt.Sprintf(`{"exp":%d,"aud":null}`, exp), false},                        // null
		{h, fmt.Sprintf(`{"exp":0%d}`, exp), false},                                  // leading zero
		{h, fmt.Sprintf(`{"exp":%d} x`, exp), false},                                 // trailing data
		{`{"alg":"none","typ":"JWT"}`, fmt.Sprintf(`{"exp":%d}`, exp), false},        // other header
		{`{"typ":"JWT","alg":"EdDSA"}`, fmt.Sprintf(`{"exp":%d}`, exp), false},       // same, other order
	} {
		tok := compactToken(tc.header, tc.claims, priv)
		if got := sameAsJWT(t, tok, pub, now); got != tc.fast {
			t.Errorf("%s: fast path %v, want %v", tc.claims, got, tc.fast)
		}
		flipped := flipSigTrailingBit(t, tok) // the same signature bytes, not strictly encoded
		for _, bad := range []string{tok[:len(tok)-2] + "AA", tok + ".x", strings.Replace(tok, ".", "..", 1), flipped} {
			sameAsJWT(t, bad, pub, now)
		}
	}
}

// FuzzVerifyCompact: for any claims JSON, signed or not, at any time, the fast path
// (when it takes the token) decides as golang-jwt does.
func FuzzVerifyCompact(f *testing.F) {
	f.Add(fmt.Sprintf(`{"kind":"client","first_slot":1,"seal_key":"ab","iss":"polyroot-registrar","sub":"cd","aud":["api.example.com"],"exp":%d,"jti":"0011"}`, now.Unix()), int64(0), true)
	f.Add(`{"aud":"x","exp":1,"nbf":2,"iat":3}`, int64(-5), false)
	f.Add(`{"aud":["x","y"],"last_slot":0,"exp":9007199254740991}`, int64(1<<40), true)
	f.Fuzz(func(t *testing.T, claimsJSON string, offset int64, signed bool) {
		key := priv
		if !signed {
			key = other
		}
		tok := compactToken(`{"alg":"EdDSA","typ":"JWT"}`, claimsJSON, key)
		sameAsJWT(t, tok, pub, now.Add(time.Duration(offset)*time.Second))
	})
}
