package demo

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// An authority is a certificate authority made for the run: the domain's own, which
// certifies the auth server, or the rogue root forced on alice's device.
type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newAuthority(name string) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return &authority{cert: cert, key: key}, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	return n
}

// issue makes a server certificate for 127.0.0.1 and localhost.
func (a *authority) issue() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// issueFiles writes a server certificate and its key as PEM files in dir.
func (a *authority) issueFiles(dir, name string) (certFile, keyFile string, err error) {
	c, err := a.issue()
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return "", "", err
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o644); err != nil {
		return "", "", err
	}
	return certFile, keyFile, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// serveTLS serves h over TLS on a loopback port with a certificate from ca; it
// returns the URL and a function that stops the server.
func serveTLS(h http.Handler, ca *authority) (string, func(), error) {
	cert, err := ca.issue()
	if err != nil {
		return "", nil, err
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return "https://" + l.Addr().String(), func() { srv.Close() }, nil
}

// startInterceptor starts a TLS-terminating reverse proxy in front of the server at
// target: it shows alice's device a certificate from rogue, and reaches the server
// over its own TLS connection (trusting the domain's CA), as a state-run interception
// box would.
func startInterceptor(target string, rogue, domainCA *authority) (string, func(), error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(domainCA.cert)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	return serveTLS(rp, rogue)
}

// startImpostor starts an auth server for domain that holds key instead of the
// domain's sQ, with a certificate from ca. It answers every login with a made-up
// key-confirmation tag, since it cannot make the real one.
func startImpostor(domain pairing.Domain, key *pairing.G2, ca *authority) (string, func(), error) {
	sk, err := pairing.NewServerKey(key)
	if err != nil {
		return "", nil, err
	}
	v := &pairing.Verifier{Domain: domain, Key: sk}
	var mu sync.Mutex
	sessions := map[[pairing.SessionIDSize]byte]*pairing.ServerSession{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login/start", func(w http.ResponseWriter, r *http.Request) {
		var req wire.StartRequest
		var p1 pairing.Pass1
		if json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req) != nil || p1.UnmarshalBinary(req.Pass1) != nil {
			http.Error(w, `{"code":"bad_request","message":"bad pass 1"}`, http.StatusBadRequest)
			return
		}
		sess, ch, err := v.Challenge(rand.Reader, &p1, time.Now())
		if err != nil {
			http.Error(w, `{"code":"bad_request","message":"bad pass 1"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		sessions[sess.ID()] = sess
		mu.Unlock()
		b, _ := ch.MarshalBinary()
		writeJSON(w, wire.StartResponse{Challenge: b})
	})
	mux.HandleFunc("POST /v1/login/finish", func(w http.ResponseWriter, r *http.Request) {
		var req wire.FinishRequest
		var p2 pairing.Pass2
		if json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req) != nil || p2.UnmarshalBinary(req.Pass2) != nil {
			http.Error(w, `{"code":"bad_request","message":"bad pass 2"}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		sess := sessions[p2.SessionID]
		delete(sessions, p2.SessionID)
		mu.Unlock()
		if sess != nil {
			_, _, _ = sess.Finish(&p2, nil) // fails: s_1·Q is not sQ
		}
		var f pairing.Finish
		rand.Read(f.Tag[:])
		b, _ := f.MarshalBinary()
		writeJSON(w, wire.FinishResponse{Finish: b, ID: aliceID, AccessToken: "made-up", ExpiresAt: time.Now().Add(time.Hour)})
	})
	return serveTLS(mux, ca)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// postJSON posts in to url and decodes a 200 answer into out; any other answer's
// error code is returned as code.
func postJSON(ctx context.Context, hc *http.Client, url string, in, out any) (code string, err error) {
	body, err := json.Marshal(in)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Code string }
		if json.Unmarshal(raw, &e) != nil || e.Code == "" {
			return "", fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
		}
		return e.Code, nil
	}
	return "", json.Unmarshal(raw, out)
}

// rawLogin runs the two login passes of pc against the server and returns the
// server's error code for pass 2 ("" if it accepted the login).
func rawLogin(ctx context.Context, hc *http.Client, serverURL string, pc *pairing.Client, pin []byte) (string, error) {
	sess, p1, err := pc.Start(rand.Reader, pin)
	if err != nil {
		return "", err
	}
	b1, _ := p1.MarshalBinary()
	var sr wire.StartResponse
	if code, err := postJSON(ctx, hc, serverURL+"/v1/login/start", wire.StartRequest{Pass1: b1}, &sr); err != nil || code != "" {
		return code, err
	}
	var ch pairing.Challenge
	if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
		return "", err
	}
	p2, err := sess.Respond(&ch, nil)
	if err != nil {
		return "", err
	}
	b2, _ := p2.MarshalBinary()
	var fr wire.FinishResponse
	return postJSON(ctx, hc, serverURL+"/v1/login/finish", wire.FinishRequest{Pass2: b2}, &fr)
}

// askPermit presents a registrar-signed permit ticket for idhash's current slot to
// DTA 2 and returns its error code ("" if it issued the permit share).
func askPermit(ctx context.Context, b *bundle.Bundle, registrar ed25519.PrivateKey, idhash string) (string, error) {
	slot := pairing.Domain{Name: b.Domain, PermitPeriod: b.PermitPeriod}.Slot(time.Now())
	sealKey, _, err := wire.NewSealKey()
	if err != nil {
		return "", err
	}
	tk, err := ticket.Sign(ticket.Ticket{Domain: b.Domain, Kind: ticket.KindPermit, IDHash: idhash, SealKey: hex.EncodeToString(sealKey),
		FirstSlot: slot, LastSlot: slot, NotAfter: time.Now().Add(5 * time.Minute)}, registrar)
	if err != nil {
		return "", err
	}
	d, ok := b.Find(2)
	if !ok {
		return "", fmt.Errorf("the bundle has no DTA 2")
	}
	var resp wire.DTAResponse
	return postJSON(ctx, http.DefaultClient, d.URL+"/v1/shares/permit", wire.DTARequest{Ticket: tk}, &resp)
}
