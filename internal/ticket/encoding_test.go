package ticket

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// flipTrailingBit sets the lowest bit of the last character of a base64url segment
// whose last character carries bits beyond its bytes (a segment of 3k+1 or 3k+2 bytes):
// the lenient decoder reads the same bytes from the result.
func flipTrailingBit(t testing.TB, seg string) string {
	t.Helper()
	if len(seg)%4 == 0 {
		t.Fatalf("segment %q has no trailing bits", seg)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	v := strings.IndexByte(alphabet, seg[len(seg)-1])
	flipped := seg[:len(seg)-1] + string(alphabet[v^1])
	a, errA := base64.RawURLEncoding.DecodeString(seg)
	b, errB := base64.RawURLEncoding.DecodeString(flipped)
	if errA != nil || errB != nil || string(a) != string(b) {
		t.Fatalf("flipping the trailing bit of %q changed its bytes", seg)
	}
	return flipped
}

// flipSigTrailingBit is tok with flipTrailingBit applied to its signature.
func flipSigTrailingBit(t testing.TB, tok string) string {
	i := strings.LastIndexByte(tok, '.') + 1
	return tok[:i] + flipTrailingBit(t, tok[i:])
}

// TestVerifyOneEncoding: a ticket is accepted in its one canonical encoding only, on
// both paths, since each DTA keys its record on the hash of the string: a variant
// that verified would use up the nonce of the genuine ticket.
func TestVerifyOneEncoding(t *testing.T) {
	tk := Ticket{Domain: "api.example.com", Kind: KindClient, IDHash: idh, SealKey: sealKey, NotAfter: now.Add(time.Hour)}
	fast := sign(t, tk, priv)
	claimsJSON, err := base64.RawURLEncoding.DecodeString(strings.Split(fast, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	slow := compactToken(`{"typ":"JWT","alg":"EdDSA"}`, string(claimsJSON), priv) // not Sign's header: golang-jwt decides
	if _, _, ok := verifyCompact(slow, pub, now); ok {
		t.Fatal("the golang-jwt case took the fast path")
	}
	for path, tok := range map[string]string{"compact": fast, "jwt": slow} {
		if _, err := Verify(tok, pub, "api.example.com", KindClient, now); err != nil {
			t.Fatalf("%s: the canonical ticket: %v", path, err)
		}
		parts := strings.Split(tok, ".")
		h, p, s := parts[0], parts[1], parts[2]
		variants := map[string]string{
			"fail/sig-trailing-bits": flipSigTrailingBit(t, tok),
			"fail/sig-crlf":          h + "." + p + "." + s[:10] + "\r\n" + s[10:],
			"fail/sig-lf-at-end":     tok + "\n",
			"fail/sig-cr":            h + "." + p + "." + s[:20] + "\r" + s[20:],
			"fail/sig-padding":       tok + "==",
			"fail/sig-space":         h + "." + p + "." + s[:30] + " " + s[30:],
			"fail/payload-lf":        h + "." + p[:10] + "\n" + p[10:] + "." + s,
			"fail/payload-padding":   h + "." + p + "=." + s,
			"fail/header-crlf":       h[:5] + "\r\n" + h[5:] + "." + p + "." + s,
			"fail/header-padding":    h + "=." + p + "." + s,
			"fail/std-alphabet":      strings.NewReplacer("-", "+", "_", "/").Replace(tok),
		}
		if len(p)%4 != 0 {
			variants["fail/payload-trailing-bits"] = h + "." + flipTrailingBit(t, p) + "." + s
		}
		for name, v := range variants {
			if v == tok {
				continue // the replacement found nothing to replace
			}
			t.Run(path+"/"+name, func(t *testing.T) {
				if _, err := Verify(v, pub, "api.example.com", KindClient, now); !errors.Is(err, ErrInvalid) {
					t.Fatalf("got %v, want %v", err, ErrInvalid)
				}
			})
		}
	}
}
