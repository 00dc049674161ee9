package client

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

const testDomainName = "api.example.com"

// testPeriod is the permit period of the test domains (one hour).
const testPeriod = 3600

// fakeRegistrar is a TEMPORARY stand-in for the auth server's registrar until server/
// exists: it serves only POST /v1/enrol as server/api.go specifies, signing tickets
// with the test domain's registrar key. Tests that use it move to the real server
// when it lands.
type fakeRegistrar struct {
	d    *testdomain.Domain
	days uint64 // permit slots per enrolment

	mu    sync.Mutex
	codes map[string]wire.EnrolPackage
	ids   map[pairing.IDHash]string // idhash → ID, for testServer
}

func newFakeRegistrar(d *testdomain.Domain) *fakeRegistrar {
	return &fakeRegistrar{d: d, days: 3, codes: map[string]wire.EnrolPackage{}, ids: map[pairing.IDHash]string{}}
}

// enrolment creates an enrolment for id and returns its one-time code.
func (f *fakeRegistrar) enrolment(t testing.TB, id string, device bool) string {
	t.Helper()
	salt := make([]byte, pairing.SaltSize)
	rand.Read(salt)
	h, err := pairing.NewIDHash(f.d.Name, id, salt)
	if err != nil {
		t.Fatal(err)
	}
	cur := pairing.Domain{Name: f.d.Name, PermitPeriod: f.d.PermitPeriod}.Slot(time.Now())
	pkg := wire.EnrolPackage{Domain: f.d.Name, ID: id, Salt: salt, IDHash: hex.EncodeToString(h[:]), Device: device,
		ClientTicket: f.ticket(t, ticket.KindClient, h, 0, 0)}
	if f.d.PermitPeriod != 0 {
		pkg.FirstSlot, pkg.LastSlot = cur, cur+f.days-1
		pkg.PermitTicket = f.ticket(t, ticket.KindPermit, h, pkg.FirstSlot, pkg.LastSlot)
	}
	var c [8]byte
	rand.Read(c[:])
	code := hex.EncodeToString(c[:])
	f.mu.Lock()
	f.codes[code], f.ids[h] = pkg, id
	f.mu.Unlock()
	return code
}

func (f *fakeRegistrar) ticket(t testing.TB, kind string, h pairing.IDHash, first, last uint64) string {
	t.Helper()
	s, err := ticket.Sign(ticket.Ticket{Domain: f.d.Name, Kind: kind, IDHash: hex.EncodeToString(h[:]),
		FirstSlot: first, LastSlot: last, NotAfter: time.Now().Add(time.Hour)}, f.d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fakeRegistrar) id(h pairing.IDHash) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id, ok := f.ids[h]
	return id, ok
}

func (f *fakeRegistrar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req wire.RedeemRequest
	if json.NewDecoder(r.Body).Decode(&req) != nil {
		writeErr(w, 400, "bad_request", "bad body", nil)
		return
	}
	f.mu.Lock()
	pkg, ok := f.codes[req.Code]
	delete(f.codes, req.Code)
	f.mu.Unlock()
	if !ok {
		writeErr(w, 404, "unknown_code", "unknown, used or expired code", nil)
		return
	}
	writeJSON(w, 200, pkg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg string, tries *int) {
	writeJSON(w, status, apiError{Code: code, Message: msg, TriesLeft: tries})
}

// provisionSQ fetches, checks and combines the server key sQ from d's DTAs, as
// `polyroot server provision` will.
func provisionSQ(t testing.TB, d *testdomain.Domain) *pairing.ServerKey {
	t.Helper()
	pub, priv, err := wire.NewServerShareKey()
	if err != nil {
		t.Fatal(err)
	}
	tk, err := ticket.Sign(ticket.Ticket{Domain: d.Name, Kind: ticket.KindServer, ServerKey: hex.EncodeToString(pub),
		NotAfter: time.Now().Add(time.Hour)}, d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	var indices []uint32
	var shares []*pairing.G2
	for _, x := range d.DTAs {
		var resp wire.DTAResponse
		if _, err := postJSON(context.Background(), http.DefaultClient, x.URL+"/v1/shares/server", "", wire.DTARequest{Ticket: tk}, &resp); err != nil {
			t.Fatal(err)
		}
		plain, err := wire.OpenServerShare(priv, d.Name, x.Index, resp.Shares[0].Sealed)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pairing.DecodeG2(plain)
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := d.Bundle.Find(x.Index)
		c, _ := rec.CommitmentPoint()
		if err := pairing.VerifyServerShare(c, s); err != nil {
			t.Fatal(err)
		}
		indices, shares = append(indices, x.Index), append(shares, s)
	}
	sQ, err := pairing.Combine(pairing.Additive, indices, shares)
	if err != nil {
		t.Fatal(err)
	}
	k, err := pairing.NewServerKey(sQ)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testServer is a TEMPORARY in-test stand-in for the auth server's login routes
// (POST /v1/login/start, /v1/login/finish, and /v1/permits for RefreshPermits) per
// server/api.go, built on pairing.Verifier. With impostor set it holds another
// domain's sQ and, like an attacker would, answers pass 2 with a made-up tag.
type testServer struct {
	reg      *fakeRegistrar
	verifier *pairing.Verifier
	impostor bool
	now      func() time.Time

	mu       sync.Mutex
	sessions map[[pairing.SessionIDSize]byte]pending
	failures map[pairing.IDHash]int
	tokens   map[string]pairing.IDHash
	keys     map[string][]byte // access token → session key
}

func newTestServer(reg *fakeRegistrar, key *pairing.ServerKey) *testServer {
	return &testServer{reg: reg, now: time.Now,
		verifier: &pairing.Verifier{Domain: pairing.Domain{Name: reg.d.Name, PermitPeriod: reg.d.PermitPeriod}, Key: key},
		sessions: map[[pairing.SessionIDSize]byte]pending{}, failures: map[pairing.IDHash]int{},
		tokens: map[string]pairing.IDHash{}, keys: map[string][]byte{}}
}

const maxFailures = 3

// pending is a login between its passes.
type pending struct {
	sess *pairing.ServerSession
	id   pairing.IDHash
}

func (s *testServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/enrol", s.reg)
	mux.HandleFunc("POST /v1/login/start", s.start)
	mux.HandleFunc("POST /v1/login/finish", s.finish)
	mux.HandleFunc("POST /v1/permits", s.permits)
	return mux
}

func (s *testServer) fail(w http.ResponseWriter, h pairing.IDHash, count bool) {
	s.mu.Lock()
	if count && s.failures[h] < maxFailures {
		s.failures[h]++
	}
	left := maxFailures - s.failures[h]
	s.mu.Unlock()
	writeErr(w, 401, "login_failed", "login failed", &left)
}

func (s *testServer) start(w http.ResponseWriter, r *http.Request) {
	var req wire.StartRequest
	var p1 pairing.Pass1
	if json.NewDecoder(r.Body).Decode(&req) != nil || p1.UnmarshalBinary(req.Pass1) != nil {
		writeErr(w, 400, "bad_request", "bad pass 1", nil)
		return
	}
	s.mu.Lock()
	blocked := s.failures[p1.IDHash] >= maxFailures
	s.mu.Unlock()
	if _, known := s.reg.id(p1.IDHash); !known || blocked {
		s.fail(w, p1.IDHash, false)
		return
	}
	sess, ch, err := s.verifier.Challenge(nil, &p1, s.now())
	if errors.Is(err, pairing.ErrPermitSlot) {
		writeErr(w, 409, "permit_slot", "not the current permit slot", nil)
		return
	}
	if err != nil {
		writeErr(w, 400, "bad_request", err.Error(), nil)
		return
	}
	s.mu.Lock()
	s.sessions[sess.ID()] = pending{sess, p1.IDHash}
	s.mu.Unlock()
	b, _ := ch.MarshalBinary()
	writeJSON(w, 200, wire.StartResponse{Challenge: b})
}

func (s *testServer) finish(w http.ResponseWriter, r *http.Request) {
	var req wire.FinishRequest
	var p2 pairing.Pass2
	if json.NewDecoder(r.Body).Decode(&req) != nil || p2.UnmarshalBinary(req.Pass2) != nil {
		writeErr(w, 400, "bad_request", "bad pass 2", nil)
		return
	}
	s.mu.Lock()
	p, ok := s.sessions[p2.SessionID]
	delete(s.sessions, p2.SessionID)
	s.mu.Unlock()
	if !ok {
		writeErr(w, 404, "unknown_session", "expired or used", nil)
		return
	}
	var binding []byte
	if r.TLS != nil {
		var err error
		if binding, err = r.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32); err != nil {
			writeErr(w, 500, "internal", err.Error(), nil)
			return
		}
	}
	h := p.id
	f, key, err := p.sess.Finish(&p2, binding)
	switch {
	case s.impostor:
		var tag pairing.Finish
		rand.Read(tag.Tag[:])
		b, _ := tag.MarshalBinary()
		writeJSON(w, 200, wire.FinishResponse{Finish: b, ID: "whoever", AccessToken: "x", ExpiresAt: time.Now().Add(time.Hour)})
		return
	case errors.Is(err, pairing.ErrChannelBinding):
		writeErr(w, 401, "channel_binding_mismatch", "the channel binding does not match", nil)
		return
	case err != nil:
		s.fail(w, h, true)
		return
	}
	var tb [16]byte
	rand.Read(tb[:])
	tok := hex.EncodeToString(tb[:])
	id, _ := s.reg.id(h)
	s.mu.Lock()
	s.failures[h] = 0
	s.tokens[tok], s.keys[tok] = h, key
	s.mu.Unlock()
	b, _ := f.MarshalBinary()
	writeJSON(w, 200, wire.FinishResponse{Finish: b, ID: id, AccessToken: tok, ExpiresAt: time.Now().Add(time.Hour)})
}

func (s *testServer) permits(w http.ResponseWriter, r *http.Request) {
	tok, ok := bytes.CutPrefix([]byte(r.Header.Get("Authorization")), []byte("Bearer "))
	s.mu.Lock()
	h, known := s.tokens[string(tok)]
	s.mu.Unlock()
	var req wire.PermitRequest
	if !ok || !known {
		writeErr(w, 401, "invalid_token", "no valid access token", nil)
		return
	}
	if json.NewDecoder(r.Body).Decode(&req) != nil || req.Days < 1 || req.Days > 30 {
		writeErr(w, 400, "bad_request", "days must be 1 to 30", nil)
		return
	}
	cur := s.verifier.Domain.Slot(s.now())
	last := cur + uint64(req.Days) - 1
	tk, err := ticket.Sign(ticket.Ticket{Domain: s.reg.d.Name, Kind: ticket.KindPermit, IDHash: hex.EncodeToString(h[:]),
		FirstSlot: cur, LastSlot: last, NotAfter: time.Now().Add(time.Hour)}, s.reg.d.Registrar)
	if err != nil {
		writeErr(w, 500, "internal", err.Error(), nil)
		return
	}
	writeJSON(w, 200, wire.PermitTicket{Ticket: tk, FirstSlot: cur, LastSlot: last})
}

// sessionKey returns the server's session key of a login.
func (s *testServer) sessionKey(accessToken string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[accessToken]
}

// env is one test domain with its DTAs, the fake registrar and the login stand-in
// over TLS, and a client directory bootstrapped on the domain's bundle.
type env struct {
	d       *testdomain.Domain
	reg     *fakeRegistrar
	ts      *testServer
	srv     *httptest.Server
	roots   *x509.CertPool
	dir     string
	dtaHTTP *http.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	d := testdomain.New(t, testDomainName, 3, testPeriod)
	e := &env{d: d, reg: newFakeRegistrar(d), dir: t.TempDir(), roots: x509.NewCertPool(), dtaHTTP: &http.Client{}}
	e.ts = newTestServer(e.reg, provisionSQ(t, d))
	e.srv = httptest.NewUnstartedServer(e.ts.handler())
	e.srv.EnableHTTP2 = true
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	e.roots.AddCert(e.srv.Certificate())
	if err := Bootstrap(context.Background(), e.dir, d.WriteBundle(t.TempDir()), d.Fingerprint); err != nil {
		t.Fatal(err)
	}
	return e
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
	if err := c.Enroll(context.Background(), e.srv.URL, e.reg.enrolment(t, id, pin == nil), pin, pin == nil); err != nil {
		t.Fatal(err)
	}
	return c
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
