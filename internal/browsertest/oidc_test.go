package browsertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/examples/relying-party/rp"
	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/server"
)

// TestBrowserOIDCRelyingParty: the whole OpenID Connect code flow in Chromium. The
// example relying party (examples/relying-party, on go-oidc) sends the browser to the
// auth server's provider, which sends it to the PIN pad; the page logs in, completes
// the auth request, and the app gets a code, exchanges it and verifies the ID token,
// then shows who logged in and how.
func TestBrowserOIDCRelyingParty(t *testing.T) {
	const secret = "example-rp-secret-0123456789abcdef0123456789"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + l.Addr().String()
	sum := sha256.Sum256([]byte(secret))
	st := StartStack(t, func(origin string, cfg *server.Config) {
		cfg.OIDC = server.OIDCConfig{Issuer: origin + "/oidc", AllowInsecure: true, Clients: []oidcop.Client{{
			ID: "example", AuthMethod: oidcop.AuthSecretBasic, SecretSHA256: hex.EncodeToString(sum[:]),
			RedirectURIs: []string{appURL + "/callback"}}}}
	})
	app, err := rp.New(context.Background(), rp.Config{Issuer: st.URL + "/oidc", ClientID: "example", ClientSecret: secret, URL: appURL})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	b := newBrowser(t)
	const id, pin = "erin@browser.example.test", "271828"
	enrolInBrowser(t, b, st, id, pin)

	b.navigate(appURL + "/login")
	if s := b.waitScreen("screen-pin", time.Minute); !strings.Contains(eval[string](b, 10*time.Second, `location.search`), "authRequestID=") {
		t.Fatalf("the app's login did not reach the provider's PIN pad: %+v", s)
	}
	if shown := eval[string](b, 10*time.Second, `(document.querySelector('.requester') || {}).innerText || ''`); !strings.Contains(shown, l.Addr().String()) {
		t.Errorf("the PIN pad names the site %q, want the app's %s", shown, l.Addr())
	}
	b.typePIN(pin)
	deadline := time.Now().Add(loginTimeout)
	for eval[string](b, 10*time.Second, `location.origin + location.pathname`) != appURL+"/" || !eval[bool](b, 10*time.Second, `!!document.getElementById('subject')`) {
		if time.Now().After(deadline) {
			t.Fatalf("the browser did not come back to the app logged in; it shows %s: %q", eval[string](b, 10*time.Second, `location.href`),
				eval[string](b, 10*time.Second, `document.body.innerText`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := eval[string](b, 10*time.Second, `document.getElementById('subject').textContent`); got != id {
		t.Errorf("the app says %q logged in, want %s", got, id)
	}
	if got := eval[string](b, 10*time.Second, `document.getElementById('amr').textContent`); got != "mpin pin" {
		t.Errorf("the app says the methods were %q, want \"mpin pin\" (no tls-cb from a browser)", got)
	}
	b.screenshot("relying-party-logged-in")
	if leaks := eval[[]string](b, 10*time.Second, pinLeakJS+"("+jsString(pin)+")"); len(leaks) > 0 {
		t.Errorf("the PIN is in the app's page: %v", leaks)
	}
}
