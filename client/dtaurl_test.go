package client

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
)

// TestBootstrapDTAURLs: a bundle that names a plain http:// DTA URL outside loopback is
// not pinned, unless the option allows it.
func TestBootstrapDTAURLs(t *testing.T) {
	d := testdomain.New(t, testDomainName, 2, testPeriod) // its DTAs listen on http://127.0.0.1:…
	withURL := func(u string) (path, fp string) {
		b := *d.Bundle
		b.DTAs = append([]bundle.DTA(nil), d.Bundle.DTAs...)
		b.DTAs[0].URL = u
		file, fp, err := bundle.Sign(&b, d.Registrar)
		if err != nil {
			t.Fatal(err)
		}
		path = filepath.Join(t.TempDir(), "bundle.json")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		return path, fp
	}
	cases := []struct {
		name, url string
		opts      []Option
		wantErr   error
	}{
		{name: "ok/http-loopback", url: d.Bundle.DTAs[0].URL},
		{name: "ok/http-localhost", url: "http://localhost:8441"},
		{name: "ok/https", url: "https://dta1.example.net:8441"},
		{name: "fail/http-non-loopback", url: "http://dta-1:8441", wantErr: bundle.ErrPlainHTTP},
		{name: "ok/http-allowed-explicitly", url: "http://dta-1:8441", opts: []Option{WithInsecureDTAHTTP()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, fp := withURL(tc.url)
			err := Bootstrap(context.Background(), t.TempDir(), path, fp, tc.opts...)
			if tc.wantErr == nil && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.url)) {
				t.Fatalf("got %v, want %v naming %s", err, tc.wantErr, tc.url)
			}
		})
	}
}

// recordingTransport answers every request with 204 and counts them.
type recordingTransport struct{ n int }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.n++
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// TestDTAClientRefusesPlainHTTP: whatever the bundle says (one pinned before the check
// existed, a redirect), the DTA client sends nothing over plain http outside loopback
// unless allowed.
func TestDTAClientRefusesPlainHTTP(t *testing.T) {
	cases := []struct {
		name, url string
		allow     bool
		sent      bool
	}{
		{"fail/http-non-loopback", "http://dta-1:8441/v1/shares/client", false, false},
		{"ok/http-loopback", "http://127.0.0.1:8441/v1/shares/client", false, true},
		{"ok/http-loopback-ipv6", "http://[::1]:8441/v1/shares/client", false, true},
		{"ok/https", "https://dta1.example.net/v1/shares/client", false, true},
		{"ok/http-allowed-explicitly", "http://dta-1:8441/v1/shares/client", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := &recordingTransport{}
			var opts []Option
			if tc.allow {
				opts = append(opts, WithInsecureDTAHTTP())
			}
			o := newOptions(append(opts, WithDTAClient(&http.Client{Transport: rt})))
			resp, err := o.dtaHTTP.Post(tc.url, "application/json", strings.NewReader(`{"ticket":"secret"}`))
			if resp != nil {
				resp.Body.Close()
			}
			if sent := rt.n == 1; sent != tc.sent || (err == nil) != tc.sent {
				t.Fatalf("sent %v, err %v", sent, err)
			}
			if !tc.sent && !errors.Is(err, bundle.ErrPlainHTTP) {
				t.Fatalf("error %v does not say why", err)
			}
		})
	}
}

// TestServerURLScheme: the auth server is reached over https; plain http only to a
// loopback host and only with WithInsecureHTTP (found by review: the option let an
// application log in over plain http to any host, with no channel binding).
func TestServerURLScheme(t *testing.T) {
	for _, tc := range []struct {
		name     string
		url      string
		insecure bool
		ok       bool
	}{
		{"ok/https", "https://auth.example.com", false, true},
		{"ok/http-loopback-insecure", "http://127.0.0.1:8440", true, true},
		{"ok/http-localhost-insecure", "http://localhost:8440", true, true},
		{"fail/http-loopback", "http://127.0.0.1:8440", false, false},
		{"fail/http-remote-insecure", "http://auth.example.com", true, false},
		{"fail/http-private-address-insecure", "http://10.0.0.5:8440", true, false},
		{"fail/other-scheme", "ftp://auth.example.com", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &options{insecure: tc.insecure}
			_, err := o.serverURL(tc.url, "/v1/login/start")
			if (err == nil) != tc.ok {
				t.Fatalf("serverURL(%q) with insecure %v: %v", tc.url, tc.insecure, err)
			}
		})
	}
}
