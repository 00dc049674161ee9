package devnet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"
)

// The devnet CA certifies the auth server. It is made on the first start (D/ca.pem,
// public, and D/ca.key, mode 0600) and kept; the server's certificate is issued anew
// at every start. Its name constraints limit it to loopback names (localhost,
// 127.0.0.0/8, ::1): added to a trust store, it cannot vouch for any other host.
const (
	caFile        = "ca.pem"
	caKeyFile     = "ca.key"
	caValidity    = 10 * 365 * 24 * time.Hour
	leafValidity  = 365 * 24 * time.Hour
	serverTLSDir  = "server"
	serverCrtFile = "tls-cert.pem"
	serverKeyFile = "tls-key.pem"
)

// devnetCA is the devnet's certificate authority.
type devnetCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// ensureCA reads the devnet CA from D, or makes it when D has none.
func (d *Devnet) ensureCA() (*devnetCA, error) {
	certPEM, cerr := os.ReadFile(d.path(caFile))
	keyPEM, kerr := os.ReadFile(d.path(caKeyFile))
	if cerr == nil && kerr == nil {
		ca, err := parseCA(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("devnet: %s and %s: %w: remove both to make a new devnet CA", d.path(caFile), d.path(caKeyFile), err)
		}
		return ca, nil
	}
	if !errors.Is(cerr, os.ErrNotExist) && cerr != nil {
		return nil, cerr
	}
	if !errors.Is(kerr, os.ErrNotExist) && kerr != nil {
		return nil, kerr
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "polyroot devnet CA (" + d.Info.Domain + ")"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(caValidity),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		PermittedDNSDomainsCritical: true, PermittedDNSDomains: []string{"localhost"},
		PermittedIPRanges: []*net.IPNet{
			{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)},
			{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path(caKeyFile), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(d.path(caFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &devnetCA{cert: cert, key: key}, err
}

func parseCA(certPEM, keyPEM []byte) (*devnetCA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, errors.New("not a CA certificate with its key")
	}
	if time.Now().After(cert.NotAfter) {
		return nil, fmt.Errorf("the devnet CA expired on %s", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	return &devnetCA{cert: cert, key: key}, nil
}

// issueServerCert writes a new certificate for the auth server on loopback (127.0.0.1,
// ::1, localhost) and its key (mode 0600) into D/server, and returns their paths.
func (d *Devnet) issueServerCert(ca *devnetCA) (certFile, keyFile string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	notAfter := now.Add(leafValidity)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: notAfter,
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(d.path(serverTLSDir), 0o700); err != nil {
		return "", "", err
	}
	certFile, keyFile = d.path(serverTLSDir, serverCrtFile), d.path(serverTLSDir, serverKeyFile)
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// trusting is an HTTP client that trusts the devnet CA only.
func trusting(ca *devnetCA) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}}
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}
