package httpx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate for 127.0.0.1 and its key into dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestServeMinTLSVersion: with MinTLSVersion TLS 1.3 (the auth server's setting) a TLS
// 1.2 client is refused at the handshake; by default TLS 1.2 is accepted.
func TestServeMinTLSVersion(t *testing.T) {
	cert, key, pool := selfSigned(t, t.TempDir())
	cases := []struct {
		name          string
		min           uint16
		clientMax     uint16
		wantHandshake bool
	}{
		{"fail/tls12-client-tls13-server", tls.VersionTLS13, tls.VersionTLS12, false},
		{"ok/tls13-client-tls13-server", tls.VersionTLS13, tls.VersionTLS13, true},
		{"ok/tls12-client-default-server", 0, tls.VersionTLS12, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			urls, served := make(chan string, 1), make(chan error, 1)
			go func() {
				served <- Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, MinTLSVersion: tc.min,
					Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Ready: func(u string) { urls <- u }})
			}()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Error(err)
				}
			}()
			url := <-urls
			hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: tc.clientMax}}}
			resp, err := hc.Get(url)
			if (err == nil) != tc.wantHandshake {
				t.Fatalf("GET over TLS ≤ %s: err %v", tls.VersionName(tc.clientMax), err)
			}
			if err == nil {
				resp.Body.Close()
				if resp.TLS.Version != tc.clientMax {
					t.Fatalf("negotiated %s", tls.VersionName(resp.TLS.Version))
				}
			}
			hc.CloseIdleConnections()
		})
	}
}

// TestServeAdminListener: the admin listener serves its handler alone, with the TLS
// of the public listener (the same certificate, the same minimum version), names its
// URL before the ready line, and stops with the rest; a taken address is refused.
func TestServeAdminListener(t *testing.T) {
	cert, key, pool := selfSigned(t, t.TempDir())
	answer := func(what string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(what)) })
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls, adminURLs, served := make(chan string, 1), make(chan string, 1), make(chan error, 1)
	go func() {
		served <- Serve(ctx, ServeOptions{Listen: "127.0.0.1:0", TLSCert: cert, TLSKey: key, MinTLSVersion: tls.VersionTLS13,
			Handler: answer("public"), AdminListen: "127.0.0.1:0", Admin: answer("admin"),
			AdminReady: func(u string) { adminURLs <- u }, Ready: func(u string) { urls <- u }})
	}()
	var adminURL string
	select {
	case adminURL = <-adminURLs:
	case err := <-served:
		t.Fatalf("Serve: %v", err)
	}
	url := <-urls
	if adminURL == url || !strings.HasPrefix(adminURL, "https://127.0.0.1:") {
		t.Fatalf("admin URL %s, public URL %s", adminURL, url)
	}
	get := func(u string, maxVersion uint16) (string, error) {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: maxVersion}}}
		resp, err := hc.Get(u)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for u, want := range map[string]string{url: "public", adminURL: "admin"} {
		if got, err := get(u, tls.VersionTLS13); err != nil || got != want {
			t.Errorf("GET %s: %q %v, want %q", u, got, err, want)
		}
	}
	if _, err := get(adminURL, tls.VersionTLS12); err == nil {
		t.Error("the admin listener accepted TLS 1.2 where the public one wants 1.3")
	}
	if resp, err := http.Get(strings.Replace(adminURL, "https://", "http://", 1)); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the admin listener: %d", resp.StatusCode)
		}
	}
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if c, err := net.Dial("tcp", strings.TrimPrefix(adminURL, "https://")); err == nil {
		c.Close()
		t.Error("the admin listener still accepts connections after shutdown")
	}

	if err := Serve(context.Background(), ServeOptions{Listen: "127.0.0.1:0", Handler: answer("public"), AdminListen: "127.0.0.1:0"}); err == nil {
		t.Error("an admin listener without a handler was accepted")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = Serve(context.Background(), ServeOptions{Listen: "127.0.0.1:0", Handler: answer("public"), AdminListen: l.Addr().String(), Admin: answer("admin")})
	if err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Errorf("a taken admin address: %v", err)
	}
}
