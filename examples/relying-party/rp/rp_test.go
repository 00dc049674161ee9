package rp_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/examples/relying-party/rp"
	"github.com/polyroot/polyroot/internal/devnet"
	"github.com/polyroot/polyroot/internal/oidcop"
	"github.com/polyroot/polyroot/internal/wire"
)

// TestDevnetRelyingParty: the example app logs alice in through the devnet's OpenID
// Provider. The login page's part (an unbound M-Pin login, then POST /login/complete)
// is done here by the Go client; internal/browsertest does it in Chromium.
func TestDevnetRelyingParty(t *testing.T) {
	ctx := context.Background()
	d, err := devnet.Start(ctx, devnet.Options{Dir: filepath.Join(t.TempDir(), "devnet"), PlainHTTP: true, ScryptLogN: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	secret, err := os.ReadFile(d.Info.ExampleClientSecretFile)
	if err != nil {
		t.Fatal(err)
	}
	app, err := rp.New(ctx, rp.Config{Issuer: d.Info.OIDCIssuer, ClientID: d.Info.ExampleClientID, ClientSecret: string(secret), URL: d.Info.ExampleURL})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", strings.TrimPrefix(d.Info.ExampleURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app}
	go srv.Serve(l)
	defer srv.Close()

	// The user agent: cookies, and it stops at the provider's login page.
	jar, _ := cookiejar.New(nil)
	ua := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(r *http.Request, _ []*http.Request) error {
		if r.URL.Path == "/login" && r.URL.Query().Get("authRequestID") != "" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := ua.Get(d.Info.ExampleURL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil || !strings.HasPrefix(loc.String(), d.Info.ServerURL+"/login?") {
		t.Fatalf("the app's login did not reach the provider's login page: %v %v", loc, err)
	}

	// The login page: enrol alice, log in without channel binding, complete.
	var created wire.EnrolmentCreated
	if err := d.Admin(ctx, "enrolments", wire.EnrolmentRequest{ID: "alice@example.com"}, &created); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := client.Bootstrap(ctx, dir, d.Info.Bundle, d.Info.Fingerprint); err != nil {
		t.Fatal(err)
	}
	c, err := client.Open(dir, client.WithInsecureHTTP(), client.WithoutChannelBinding())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Enroll(ctx, d.Info.ServerURL, created.Code, []byte("2468"), false); err != nil {
		t.Fatal(err)
	}
	authRequestID := loc.Query().Get("authRequestID")
	s, err := c.LoginForAuthRequest(ctx, d.Info.ServerURL, []byte("2468"), authRequestID)
	if err != nil {
		t.Fatal(err)
	}
	// From the user agent that started the authorization: it holds the request's cookie.
	body := `{"auth_request_id":"` + authRequestID + `","access_token":"` + s.AccessToken + `"}`
	resp, err = ua.Post(d.Info.ServerURL+"/login/complete", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var done oidcop.CompleteResponse
	err = json.NewDecoder(resp.Body).Decode(&done)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("complete: %s %v", resp.Status, err)
	}

	// Back to the app through the provider's callback: it shows who logged in.
	resp, err = ua.Get(done.Redirect)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Request.URL.String() != d.Info.ExampleURL+"/" || !strings.Contains(string(page), `<strong id="subject">alice@example.com</strong>`) ||
		!strings.Contains(string(page), `<span id="amr">mpin pin</span>`) {
		t.Fatalf("the app at %s shows:\n%s", resp.Request.URL, page)
	}
}
