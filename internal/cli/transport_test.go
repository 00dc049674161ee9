package cli

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/server"
)

// TestTLSWording: a certificate that does not verify is "not trusted" with the
// remedy, never "unreachable"; a connection that fails is still "unreachable".
func TestTLSWording(t *testing.T) {
	quiet := log.New(io.Discard, "", 0) // the handshake errors the test provokes
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.Config.ErrorLog = quiet
	ts.StartTLS()
	defer ts.Close()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer plain.Close()
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	get := func(c *http.Client, url string) error {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("GET %s: no error", url)
		}
		return err
	}
	host := strings.TrimPrefix(ts.URL, "https://")
	untrusted := get(http.DefaultClient, ts.URL)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"unknown-authority", untrusted, ts.URL + " is not trusted: its TLS certificate is signed by an authority this machine does not trust; use --ca-file with the PEM certificate of the CA that signed it"},
		{"wrong-name", get(trusting, "https://localhost:"+strings.Split(host, ":")[1]), "is not trusted: its TLS certificate is for example.com, *.example.com, 127.0.0.1, ::1, not localhost; check the URL"},
		{"plain-http", get(http.DefaultClient, strings.Replace(plain.URL, "http://", "https://", 1)), "is not trusted: it does not speak TLS (a plain-HTTP port?); check the URL's scheme and port"},
		{"refused", get(http.DefaultClient, "https://127.0.0.1:1/"), "https://127.0.0.1:1 is unreachable: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := transportError(tc.err, "--ca-file").Error(); !strings.Contains(got, tc.want) {
				t.Errorf("transportError = %q\nwant %q", got, tc.want)
			}
		})
	}

	// The client library's errors: a DTA by its index, several DTAs one by one.
	dta3 := &client.DTAUnreachableError{Index: 3, URL: ts.URL, Err: untrusted}
	dta2 := &client.DTAUnreachableError{Index: 2, URL: "http://127.0.0.1:1", Err: errors.New("connection refused")}
	got := clientError("enroll", errors.Join(dta2, dta3)).Error()
	want := "client enroll: DTA 2 (http://127.0.0.1:1) is unreachable: connection refused; retry later"
	if !strings.HasPrefix(got, want) || !strings.Contains(got, "; DTA 3 ("+ts.URL+") is not trusted: its TLS certificate is signed by an authority this machine does not trust; use --ca-file") ||
		strings.Contains(got, "DTA 3 ("+ts.URL+") is unreachable") {
		t.Errorf("clientError = %q", got)
	}
	if got := clientError("login", fmt.Errorf("client: auth server: %w", untrusted)).Error(); got != "client login: "+ts.URL+" is not trusted: its TLS certificate is signed by an authority this machine does not trust; use --ca-file with the PEM certificate of the CA that signed it" {
		t.Errorf("clientError = %q", got)
	}
	// server provision names the DTA and the flag of the auth server's DTA CA.
	b := &bundle.Bundle{DTAs: []bundle.DTA{{Index: 1, URL: ts.URL}}}
	if got := describeDTAError(&server.DTAError{Failed: map[uint32]error{1: untrusted}}, b); !strings.Contains(got, "DTA 1 ("+ts.URL+") is not trusted: ") || !strings.Contains(got, "use --dta-ca-file") {
		t.Errorf("describeDTAError = %q", got)
	}

	// Through the commands.
	clearEnv(t)
	t.Setenv(envAdminToken, testAdminToken)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	notTrusted := " is not trusted: its TLS certificate is signed by an authority this machine does not trust; use --ca-file with the PEM certificate of the CA that signed it"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"fail/bootstrap-untrusted", []string{"client", "bootstrap", "--dir", filepath.Join(t.TempDir(), "c"), "--bundle", ts.URL + "/v1/bundle", "--fingerprint", strings.Repeat("ab", 32)},
			"polyroot: client bootstrap: " + ts.URL + notTrusted},
		{"fail/admin-untrusted", []string{"server", "enrolments", "--server", ts.URL}, "polyroot: server enrolments: the auth server " + ts.URL + notTrusted},
		{"fail/admin-http-to-https", []string{"server", "enrolments", "--server", strings.Replace(ts.URL, "https", "http", 1), "--insecure-http"},
			"polyroot: server enrolments: the auth server at " + host + " serves HTTPS: use https:// in --server"},
		{"fail/probe-untrusted", []string{"probe", ts.URL}, "polyroot: probe: " + ts.URL + notTrusted},
		{"ok/probe-trusted", []string{"probe", "--ca-file", caFile, ts.URL}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			if code != 1 || errOut != tc.want+"\n" {
				t.Fatalf("exit %d\nstderr: %s\nwant:   %s", code, errOut, tc.want)
			}
		})
	}
}

// TestMalformedAnswerWording: an answer that is not the expected JSON is named so,
// without json's Go types.
func TestMalformedAnswerWording(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"enrolments":"none"}`))
	}))
	defer ts.Close()
	clearEnv(t)
	t.Setenv(envAdminToken, testAdminToken)
	want := "polyroot: server enrolments: the answer of " + strings.TrimPrefix(ts.URL, "http://") + " is not what a polyroot auth server sends (is --server its URL?)\n"
	if code, _, errOut := run("server", "enrolments", "--server", ts.URL, "--insecure-http"); code != 1 || errOut != want {
		t.Fatalf("exit %d\n%s\nwant %s", code, errOut, want)
	}
	if got := clientError("login", errors.New("client: auth server: malformed answer: json: cannot unmarshal string into Go struct field StartResponse.challenge of type []uint8")).Error(); strings.Contains(got, "Go ") ||
		!strings.HasSuffix(got, "an answer that is not what a polyroot server or DTA sends (check the URL)") {
		t.Errorf("clientError = %q", got)
	}
}
