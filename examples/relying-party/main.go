// Command relying-party is an example web app that logs its users in through a
// polyroot auth server's OpenID Provider (package rp has the app).
//
// With a devnet (polyroot devnet registers this example as the client "example"):
//
//	go run ./examples/relying-party --devnet DIR
//
// With any provider:
//
//	go run ./examples/relying-party --issuer https://auth.example.com/oidc \
//	    --client-id shop --client-secret-file secret --url http://127.0.0.1:8490
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/polyroot/polyroot/examples/relying-party/rp"
)

func main() {
	devnet := flag.String("devnet", "", "take every setting from the devnet in `DIR` (its devnet.json)")
	issuer := flag.String("issuer", "", "the provider's issuer `URL`")
	clientID := flag.String("client-id", "", "the client `ID` registered with the provider")
	secretFile := flag.String("client-secret-file", "", "`FILE` holding the client secret")
	base := flag.String("url", "http://127.0.0.1:8490", "this app's base `URL` (its redirect URI is URL/callback); it listens on its host:port")
	caFile := flag.String("ca-file", "", "PEM `FILE` of a CA to trust for the provider (e.g. a devnet's)")
	flag.Parse()
	if *devnet != "" {
		var info struct {
			OIDCIssuer string `json:"oidc_issuer"`
			ClientID   string `json:"example_client_id"`
			SecretFile string `json:"example_client_secret_file"`
			ExampleURL string `json:"example_url"`
			CAFile     string `json:"ca_file"`
		}
		raw, err := os.ReadFile(filepath.Join(*devnet, "devnet.json"))
		if err == nil {
			err = json.Unmarshal(raw, &info)
		}
		if err != nil || info.OIDCIssuer == "" {
			log.Fatalf("relying-party: %s is not a running devnet's directory with an OpenID Provider (start `polyroot devnet` first): %v", *devnet, err)
		}
		*issuer, *clientID, *secretFile, *base, *caFile = info.OIDCIssuer, info.ClientID, info.SecretFile, info.ExampleURL, info.CAFile
	}
	if *issuer == "" || *clientID == "" {
		log.Fatal("relying-party: give --devnet DIR, or --issuer and --client-id (see -h)")
	}
	var secret string
	if *secretFile != "" {
		b, err := os.ReadFile(*secretFile)
		if err != nil {
			log.Fatalf("relying-party: %v", err)
		}
		secret = strings.TrimSpace(string(b))
	}
	hc := &http.Client{Timeout: 30 * time.Second}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		pool := x509.NewCertPool()
		if err != nil || !pool.AppendCertsFromPEM(pem) {
			log.Fatalf("relying-party: --ca-file %s: no PEM certificate (%v)", *caFile, err)
		}
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	u, err := url.Parse(*base)
	if err != nil || u.Host == "" {
		log.Fatalf("relying-party: --url %q is not a URL", *base)
	}
	app, err := rp.New(context.Background(), rp.Config{Issuer: *issuer, ClientID: *clientID, ClientSecret: secret,
		URL: strings.TrimSuffix(*base, "/"), HTTPClient: hc})
	if err != nil {
		log.Fatal(err)
	}
	l, err := net.Listen("tcp", u.Host)
	if err != nil {
		log.Fatalf("relying-party: %v", err)
	}
	fmt.Printf("example relying party of %s at %s: open it in a browser\n", *issuer, *base)
	log.Fatal((&http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}).Serve(l))
}
