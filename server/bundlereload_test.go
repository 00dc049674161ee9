package server

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/pairing"
)

// TestReloadBundle: a running server takes a successor bundle (after a resharing) and
// serves it at /v1/bundle; anything else is refused and the bundle in use stays,
// including a successor whose master public key does not match the server's sQ.
func TestReloadBundle(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false)
	served := func() []byte {
		t.Helper()
		resp, err := h.http.Get(h.url + "/v1/bundle")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/bundle: %d", resp.StatusCode)
		}
		return b
	}
	old := e.d.BundleFile
	if err := h.srv.ReloadBundle(old); err != nil {
		t.Fatalf("the same bundle: %v", err)
	}
	sign := func(key ed25519.PrivateKey, mutate func(*bundle.Bundle)) []byte {
		b := *e.d.Bundle
		b.DTAs = append([]bundle.DTA(nil), e.d.Bundle.DTAs...)
		mutate(&b)
		f, _, err := bundle.Sign(&b, key)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	_, other, _ := ed25519.GenerateKey(nil)
	for name, file := range map[string][]byte{
		"fail/other-registrar": sign(other, func(b *bundle.Bundle) {
			b.Serial, b.RegistrarKey = 1, hex.EncodeToString(other.Public().(ed25519.PublicKey))
		}),
		"fail/serial-not-greater": sign(e.d.Registrar, func(b *bundle.Bundle) { b.MinPINLength = 6 }),
		"fail/other-key": sign(e.d.Registrar, func(b *bundle.Bundle) {
			s, _ := pairing.RandomScalar(nil)
			b.Serial, b.DTAs[0].Commitment = 1, hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes())
		}),
	} {
		t.Run(name, func(t *testing.T) {
			if err := h.srv.ReloadBundle(file); !errors.Is(err, bundle.ErrNotSuccessor) {
				t.Fatalf("got %v", err)
			}
			if !bytes.Equal(served(), old) || h.srv.BundleFingerprint() != e.d.Fingerprint {
				t.Fatal("the bundle in use changed")
			}
		})
	}
	t.Run("ok/successor", func(t *testing.T) {
		e.d.Reshare()
		if err := h.srv.ReloadBundle(e.d.BundleFile); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(served(), e.d.BundleFile) || h.srv.BundleFingerprint() != e.d.Fingerprint {
			t.Fatal("the successor is not served")
		}
	})
	t.Run("ok/successor-moves-a-dta", func(t *testing.T) {
		// The login pages' Content-Security-Policy follows the DTAs of the bundle in use.
		moved := sign(e.d.Registrar, func(b *bundle.Bundle) { b.Serial, b.DTAs[0].URL = e.d.Bundle.Serial+1, "http://127.0.0.9:4711" })
		if err := h.srv.ReloadBundle(moved); err != nil {
			t.Fatal(err)
		}
		resp, err := h.http.Get(h.url + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "http://127.0.0.9:4711") {
			t.Fatalf("the login page's CSP does not name the moved DTA: %s", csp)
		}
	})
	t.Run("fail/sQ-mismatch", func(t *testing.T) {
		// A server whose sQ is of another domain's s (misconfigured): a successor of its
		// bundle is refused, since its s·P1 does not pair with sQ.
		other := testdomain.New(t, "other.example.test", 2, 3600)
		sQ, err := Provision(t.Context(), other.Bundle, other.Registrar, nil)
		if err != nil {
			t.Fatal(err)
		}
		h2 := e.start(t, t.TempDir(), false, func(c *Config) { c.ServerKey = sQ })
		cur := e.d.BundleFile
		e.d.Reshare()
		if err := h2.srv.ReloadBundle(e.d.BundleFile); err == nil || !bytes.Contains([]byte(err.Error()), []byte("does not match the server key")) {
			t.Fatalf("got %v", err)
		}
		if h2.srv.BundleFingerprint() != bundle.Fingerprint(cur) {
			t.Fatal("the bundle in use changed")
		}
	})
}
