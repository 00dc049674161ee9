package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/server"
)

// TestLoginWrongServer: a client pointed at another domain's auth server is told so
// before any PIN is tried, at login and at renewal.
func TestLoginWrongServer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.enroll(t, "kim@example.com", []byte("1357"))

	other := testdomain.New(t, "other.example.com", 2, testPeriod)
	sQ, err := server.Provision(ctx, other.Bundle, other.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	srv, err := server.New(ctx, server.Config{Bundle: other.Bundle, BundleFile: other.BundleFile, RegistrarKey: other.Registrar,
		ServerKey: sQ, TokenKey: tokenKey, AdminToken: testAdmin, DataDir: t.TempDir(), RatePerSecond: 1e6, RateBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	e.roots.AddCert(hs.Certificate())

	for _, wrongPIN := range []bool{false, true} {
		pin := []byte("1357")
		if wrongPIN {
			pin = []byte("0000")
		}
		_, err := c.Login(ctx, hs.URL, pin)
		if !errors.Is(err, ErrWrongServer) || !strings.Contains(err.Error(), `serves the domain "other.example.com", not "`+testDomainName+`"`) {
			t.Fatalf("login at another domain's server: %v", err)
		}
	}
	if err := c.RenewPermits(ctx, hs.URL, []byte("1357"), 1); !errors.Is(err, ErrWrongServer) {
		t.Fatalf("renewal at another domain's server: %v", err)
	}
	// A service that is no auth server at all (a DTA's port, say) has no login route.
	notAuth := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(notAuth.Close)
	e.roots.AddCert(notAuth.Certificate())
	if _, err := c.Login(ctx, notAuth.URL, []byte("1357")); !errors.Is(err, ErrWrongServer) || !strings.Contains(err.Error(), "no login endpoint") {
		t.Fatalf("login at another service: %v", err)
	}
	// Nothing was counted anywhere: three wrong PINs at home still leave their tries.
	var wpe *WrongPINError
	if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.As(err, &wpe) || wpe.TriesLeft != 2 {
		t.Fatalf("at home: %v", err)
	}
}
