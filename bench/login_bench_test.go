package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"testing"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/server"
)

const adminToken = "bench-admin-token-0123456789"

// loginServer starts three real DTAs, provisions and starts a real auth server on
// loopback, and enrols n clients through the client library.
func loginServer(b *testing.B, n int) (string, []*client.Client) {
	b.Helper()
	ctx := context.Background()
	d := testdomain.New(b, "login.example.com", 3, 86400)
	sQ, err := server.Provision(ctx, d.Bundle, d.Registrar, http.DefaultClient)
	if err != nil {
		b.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	srv, err := server.New(ctx, server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar,
		ServerKey: sQ, TokenKey: tokenKey, AdminToken: adminToken, DataDir: b.TempDir(), RatePerSecond: 1e9, RateBurst: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(l)
	b.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	url := "http://" + l.Addr().String()
	bundlePath := d.WriteBundle(b.TempDir())
	var clients []*client.Client
	for i := range n {
		body, _ := json.Marshal(wire.EnrolmentRequest{ID: fmt.Sprintf("user%d@example.com", i)})
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/admin/enrolments", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var created wire.EnrolmentCreated
		err = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("enrolment: %d %v", resp.StatusCode, err)
		}
		dir := b.TempDir()
		if err := client.Bootstrap(ctx, dir, bundlePath, d.Fingerprint, client.WithInsecureHTTP()); err != nil {
			b.Fatal(err)
		}
		c, err := client.Open(dir, client.WithInsecureHTTP())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Enroll(ctx, url, created.Code, testPIN, false); err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	return url, clients
}

// BenchmarkLoginHTTP is a whole login of an enrolled client over HTTP on loopback:
// the client library against the auth server, both in this process. Compare with
// BenchmarkLoginInProcess (the same protocol without HTTP) in the same run.
func BenchmarkLoginHTTP(b *testing.B) {
	url, clients := loginServer(b, 8)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := clients[i%len(clients)].Login(ctx, url, testPIN); err != nil {
			b.Fatal(err)
		}
	}
}
