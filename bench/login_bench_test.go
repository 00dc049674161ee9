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
	d := testdomain.New(b, "login.example.com", 3, 86400)
	url := authServer(b, d)
	var clients []*client.Client
	for i := range n {
		clients = append(clients, enrol(b, d, url, fmt.Sprintf("user%d@example.com", i)))
	}
	return url, clients
}

// authServer provisions and starts a real auth server of domain d on loopback.
func authServer(b *testing.B, d *testdomain.Domain) string {
	b.Helper()
	ctx := context.Background()
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
	return "http://" + l.Addr().String()
}

// enrol enrols id at the auth server at url through the client library.
func enrol(b *testing.B, d *testdomain.Domain, url, id string) *client.Client {
	b.Helper()
	c, code := newClient(b, d, url, id)
	if err := c.Enroll(context.Background(), url, code, testPIN, false); err != nil {
		b.Fatal(err)
	}
	return c
}

// newClient makes an enrolment code for id at the auth server at url, and a client
// bootstrapped in a new directory to redeem it.
func newClient(b *testing.B, d *testdomain.Domain, url, id string) (*client.Client, string) {
	b.Helper()
	body, _ := json.Marshal(wire.EnrolmentRequest{ID: id})
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
	if err := client.Bootstrap(context.Background(), dir, d.WriteBundle(b.TempDir()), d.Fingerprint, client.WithInsecureHTTP()); err != nil {
		b.Fatal(err)
	}
	c, err := client.Open(dir, client.WithInsecureHTTP())
	if err != nil {
		b.Fatal(err)
	}
	return c, created.Code
}

// BenchmarkEnrol is a whole enrolment through the client library against real DTAs
// and the auth server over loopback, all in this process, with five DTAs: additive
// (every DTA's share, 5 of 5) and threshold (the first three valid of five, the other
// requests cancelled). Its ns/op is the enrolment's wall time, the code's creation and
// the client's bootstrap left out.
func BenchmarkEnrol(b *testing.B) {
	for _, mode := range []struct {
		name string
		t    int
	}{{"additive", 0}, {"threshold", 3}} {
		b.Run("mode="+mode.name, func(b *testing.B) {
			var d *testdomain.Domain
			if mode.t == 0 {
				d = testdomain.New(b, "enrol.example.com", 5, 86400)
			} else {
				d = testdomain.NewThreshold(b, "enrol.example.com", mode.t, 5, 86400)
			}
			url := authServer(b, d)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				c, code := newClient(b, d, url, fmt.Sprintf("user%d@example.com", i))
				b.StartTimer()
				if err := c.Enroll(ctx, url, code, testPIN, false); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
