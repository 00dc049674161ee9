package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
	"github.com/polyroot/polyroot/server/middleware"
)

const testDomainName = "api.example.com"

// testPeriod is the permit period of the test domains (one hour).
const testPeriod = 3600

// env is one test domain with its real DTAs (internal/testdomain) and the real auth
// server (package server) provisioned with the domain's sQ, served over TLS with
// HTTP/2, and a client directory bootstrapped on the domain's bundle.
type env struct {
	d       *testdomain.Domain
	srv     *server.Server
	hs      *httptest.Server // serves srv.Handler() over TLS
	url     string           // the auth server's https URL
	roots   *x509.CertPool   // what the client trusts for the auth server
	dir     string
	dtaHTTP *http.Client
	clock   atomic.Int64 // the server's clock offset from time.Now, in nanoseconds
}

// newEnv starts a domain and its auth server; mods adjust the server's configuration.
func newEnv(t *testing.T, mods ...func(*server.Config)) *env {
	t.Helper()
	return newEnvFor(t, testdomain.New(t, testDomainName, 3, testPeriod), mods...)
}

// newEnvFor is newEnv with the given domain (e.g. a threshold one).
func newEnvFor(t *testing.T, d *testdomain.Domain, mods ...func(*server.Config)) *env {
	t.Helper()
	e := &env{d: d, dir: t.TempDir(), roots: x509.NewCertPool(), dtaHTTP: &http.Client{}}
	sQ, err := server.Provision(context.Background(), d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	cfg := server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar, ServerKey: sQ,
		TokenKey: tokenKey, AdminToken: testAdmin, DataDir: t.TempDir(), RatePerSecond: 1e6, RateBurst: 1e6,
		Now: e.serverNow}
	for _, m := range mods {
		m(&cfg)
	}
	e.srv, err = server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.hs = httptest.NewUnstartedServer(e.srv.Handler())
	e.hs.EnableHTTP2 = true
	e.hs.StartTLS()
	t.Cleanup(func() {
		e.hs.Close()
		e.srv.Close()
	})
	e.url = e.hs.URL
	e.roots.AddCert(e.hs.Certificate())
	if err := Bootstrap(context.Background(), e.dir, d.WriteBundle(t.TempDir()), d.Fingerprint); err != nil {
		t.Fatal(err)
	}
	return e
}

// testAdmin is the auth server's admin token in the tests.
const testAdmin = "admin-token-0123456789abcdef"

func (e *env) serverNow() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) }

// setServerClock moves the auth server's clock d ahead of time.Now.
func (e *env) setServerClock(d time.Duration) { e.clock.Store(int64(d)) }

// admin calls the auth server's registrar API with the admin token.
func (e *env) admin(t *testing.T, route string, in, out any) {
	t.Helper()
	if out == nil {
		out = &struct{}{}
	}
	if _, err := postJSON(context.Background(), e.hs.Client(), e.url+route, testAdmin, in, out); err != nil {
		t.Fatalf("POST %s: %v", route, err)
	}
}

// enrolment creates an enrolment for id through the admin API (three permit periods)
// and returns its one-time code.
func (e *env) enrolment(t *testing.T, id string, device bool) string {
	t.Helper()
	var created wire.EnrolmentCreated
	e.admin(t, "/v1/admin/enrolments", wire.EnrolmentRequest{ID: id, Device: device, PermitDays: 3}, &created)
	return created.Code
}

// sessionKey returns the auth server's session key of the login that got accessToken,
// after checking the token with server/middleware against the server's JWKS.
func (e *env) sessionKey(t *testing.T, accessToken string) []byte {
	t.Helper()
	claims := e.verifyToken(t, accessToken)
	k, ok := e.srv.SessionKey(claims.ID)
	if !ok {
		t.Fatalf("the server has no session key for token %s", claims.ID)
	}
	return k
}

// verifyToken checks an access token as an app backend does: keys fetched from the
// server's JWKS endpoint, then the middleware in front of a handler.
func (e *env) verifyToken(t *testing.T, accessToken string) *middleware.Claims {
	t.Helper()
	keys, err := middleware.FetchKeys(context.Background(), e.hs.Client(), e.url)
	if err != nil {
		t.Fatal(err)
	}
	var got *middleware.Claims
	h := middleware.New(keys, testDomainName, testDomainName)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = middleware.ClaimsFrom(r.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/app", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || got == nil {
		t.Fatalf("the app backend's middleware refuses the access token: %d %s", rec.Code, rec.Body)
	}
	return got
}

func (e *env) serverHTTP() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: e.roots}
	return &http.Client{Transport: tr}
}

func (e *env) open(t *testing.T, opts ...Option) *Client {
	t.Helper()
	c, err := Open(e.dir, append([]Option{WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enroll enrols a fresh identity in e's directory and returns the open client.
func (e *env) enroll(t *testing.T, id string, pin []byte, opts ...Option) *Client {
	t.Helper()
	c := e.open(t, opts...)
	if err := c.Enroll(context.Background(), e.url, e.enrolment(t, id, pin == nil), pin, pin == nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// impostor is an attacker's auth server, a test double on purpose: it serves the
// login routes for e's domain name but holds another domain's sQ, so it cannot make
// the key confirmation; it answers pass 2 with a made-up tag (and, for a renewal, a
// made-up permit ticket), as an attacker would.
type impostor struct {
	name   string
	period uint64
	key    *pairing.ServerKey

	mu       sync.Mutex
	sessions map[[pairing.SessionIDSize]byte]*pairing.ServerSession
}

// newImpostor starts an impostor for e's domain over TLS (with a certificate e's
// client trusts) and returns its URL.
func newImpostor(t *testing.T, e *env) string {
	t.Helper()
	other := testdomain.New(t, "evil.example.com", 2, testPeriod)
	sQ, err := server.Provision(context.Background(), other.Bundle, other.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := pairing.NewServerKey(sQ)
	if err != nil {
		t.Fatal(err)
	}
	im := &impostor{name: e.d.Name, period: e.d.PermitPeriod, key: key, sessions: map[[pairing.SessionIDSize]byte]*pairing.ServerSession{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/login/start", im.start)
	mux.HandleFunc("POST /v1/login/finish", im.finish)
	hs := httptest.NewUnstartedServer(mux)
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(hs.Close)
	e.roots.AddCert(hs.Certificate())
	return hs.URL
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (im *impostor) start(w http.ResponseWriter, r *http.Request) {
	var req wire.StartRequest
	var p1 pairing.Pass1
	if json.NewDecoder(r.Body).Decode(&req) != nil || p1.UnmarshalBinary(req.Pass1) != nil {
		writeJSON(w, 400, apiError{Code: "bad_request", Message: "bad pass 1"})
		return
	}
	v := &pairing.Verifier{Domain: pairing.Domain{Name: im.name, PermitPeriod: im.period}, Key: im.key}
	if req.Purpose == wire.PurposeRenew {
		v.Domain.PermitPeriod = 0
	}
	sess, ch, err := v.Challenge(nil, &p1, time.Now())
	if err != nil {
		writeJSON(w, 400, apiError{Code: "bad_request", Message: err.Error()})
		return
	}
	im.mu.Lock()
	im.sessions[sess.ID()] = sess
	im.mu.Unlock()
	b, _ := ch.MarshalBinary()
	writeJSON(w, 200, wire.StartResponse{Challenge: b})
}

func (im *impostor) finish(w http.ResponseWriter, r *http.Request) {
	var req wire.FinishRequest
	var p2 pairing.Pass2
	if json.NewDecoder(r.Body).Decode(&req) != nil || p2.UnmarshalBinary(req.Pass2) != nil {
		writeJSON(w, 400, apiError{Code: "bad_request", Message: "bad pass 2"})
		return
	}
	im.mu.Lock()
	sess := im.sessions[p2.SessionID]
	delete(im.sessions, p2.SessionID)
	im.mu.Unlock()
	if sess == nil {
		writeJSON(w, 404, apiError{Code: "unknown_session", Message: "expired or used"})
		return
	}
	if _, _, err := sess.Finish(&p2, nil); err == nil {
		panic("impostor: another domain's sQ verified a login")
	}
	var tag pairing.Finish
	rand.Read(tag.Tag[:])
	b, _ := tag.MarshalBinary()
	writeJSON(w, 200, wire.FinishResponse{Finish: b, ID: "whoever", AccessToken: "x", ExpiresAt: time.Now().Add(time.Hour),
		Permit: &wire.PermitTicket{Ticket: "made-up", FirstSlot: 1, LastSlot: 2}})
}

// newCA makes a certificate authority and a certificate it signs for 127.0.0.1.
func newCA(t *testing.T) (*x509.Certificate, tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Intercepting CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"example.com"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
}

// interceptingProxy starts a real TLS-terminating reverse proxy with its own CA in
// front of target; it reaches target over a second TLS connection. It returns the
// proxy's URL and its CA.
func interceptingProxy(t *testing.T, target *httptest.Server) (string, *x509.Certificate) {
	t.Helper()
	ca, cert := newCA(t)
	u, _ := url.Parse(target.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = target.Client().Transport
	p := httptest.NewUnstartedServer(rp)
	p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	p.StartTLS()
	t.Cleanup(p.Close)
	return p.URL, ca
}

// redirectDTA makes hc reach the DTA at dtaURL through handler h instead (a proxy in
// front of it), by dialling h's test server for the DTA's address.
func redirectDTA(t *testing.T, hc *http.Client, dtaURL string, h http.Handler) {
	t.Helper()
	p := httptest.NewServer(h)
	t.Cleanup(p.Close)
	from, _ := url.Parse(dtaURL)
	to, _ := url.Parse(p.URL)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == from.Host {
			addr = to.Host
		}
		return d.DialContext(ctx, network, addr)
	}
	hc.Transport = tr
}
