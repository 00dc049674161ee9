package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

const testAdmin = "admin-token-0123456789abcdef"

// env is a domain with its DTAs and the provisioned server key.
type env struct {
	d  *testdomain.Domain
	sQ *pairing.G2
}

var logBuf = &syncBuffer{}

// syncBuffer collects every server log line of the tests (checked for secrets).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, period uint64) *env {
	t.Helper()
	d := testdomain.New(t, "example.test", 3, period)
	sQ, err := Provision(context.Background(), d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{d: d, sQ: sQ}
}

// harness is one running server.
type harness struct {
	e        *env
	srv      *Server
	ts       *httptest.Server
	url      string
	dir      string
	tokenKey ed25519.PrivateKey
	http     *http.Client
	cfg      Config
	listener net.Listener // the next boot's listener (startOn), else a new one
}

func (e *env) config(dir string, tokenKey ed25519.PrivateKey) Config {
	return Config{Bundle: e.d.Bundle, BundleFile: e.d.BundleFile, RegistrarKey: e.d.Registrar, ServerKey: e.sQ,
		TokenKey: tokenKey, AdminToken: testAdmin, DataDir: dir, RatePerSecond: 1e6, RateBurst: 1e6,
		Logger: slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func (e *env) start(t testing.TB, dir string, tls bool, mod ...func(*Config)) *harness {
	t.Helper()
	return e.startOn(t, nil, dir, tls, mod...)
}

// startOn is start on the listener l (nil: a new one), for a server that needs to
// know its URL in its configuration.
func (e *env) startOn(t testing.TB, l net.Listener, dir string, tls bool, mod ...func(*Config)) *harness {
	t.Helper()
	_, tk, _ := ed25519.GenerateKey(nil)
	h := &harness{e: e, dir: dir, tokenKey: tk, listener: l}
	h.cfg = e.config(dir, tk)
	for _, m := range mod {
		m(&h.cfg)
	}
	h.boot(t, tls)
	return h
}

func (h *harness) boot(t testing.TB, useTLS bool) {
	t.Helper()
	srv, err := New(context.Background(), h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	h.ts = httptest.NewUnstartedServer(srv.Handler())
	if h.listener != nil {
		h.ts.Listener.Close()
		h.ts.Listener, h.listener = h.listener, nil
	}
	if useTLS {
		h.ts.StartTLS()
		h.http = h.ts.Client()
	} else {
		h.ts.Start()
		h.http = &http.Client{Timeout: 30 * time.Second}
	}
	h.url = h.ts.URL
	t.Cleanup(h.stop)
}

func (h *harness) stop() {
	if h.ts != nil {
		h.ts.Close()
		h.srv.Close()
		h.ts = nil
	}
}

// metrics scrapes the server's metrics as the operations listener serves them.
func (h *harness) metrics(t testing.TB) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// restart stops the server and starts it again on the same data directory and keys.
func (h *harness) restart(t testing.TB) {
	useTLS := h.ts.TLS != nil
	h.stop()
	h.boot(t, useTLS)
}

// do sends a JSON request and decodes the answer into out (if non-nil and 2xx).
func do(t testing.TB, c *http.Client, method, url, bearer string, in, out any) (int, []byte) {
	t.Helper()
	st, data, err := tryDo(c, method, url, bearer, in, out)
	if err != nil {
		t.Fatal(err)
	}
	return st, data
}

// tryDo is do returning the transport's error and a malformed 2xx answer's, for
// goroutines other than the test's.
func tryDo(c *http.Client, method, url, bearer string, in, out any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, body)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, data, fmt.Errorf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode, data, nil
}

// tclient plays the client side with the pairing package.
type tclient struct {
	pkg     wire.EnrolPackage
	id      pairing.IDHash
	token   *pairing.G1
	permits map[uint64]*pairing.G1
	period  uint64
	domain  string
	sealKey []byte // X25519 private key the DTAs seal this client's shares to
}

// redeemRequest makes the request that redeems code for a fresh seal key.
func (h *harness) redeemRequest(t testing.TB, code string) *wire.RedeemRequest {
	return (&tclient{domain: h.e.d.Name}).redeemRequest(t, code)
}

// redeemRequest makes a fresh seal key for c and the request that redeems code for it.
func (c *tclient) redeemRequest(t testing.TB, code string) *wire.RedeemRequest {
	t.Helper()
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	c.sealKey = priv
	req, err := wire.NewRedeemRequest(code, c.domain, pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// enrol creates an enrolment through the admin API, redeems it and collects and checks
// the shares from every DTA.
func (h *harness) enrol(t testing.TB, req wire.EnrolmentRequest, pin string) *tclient {
	t.Helper()
	var created wire.EnrolmentCreated
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, req, &created); st != 200 {
		t.Fatalf("create enrolment: %d %s", st, body)
	}
	c := &tclient{period: h.e.d.Bundle.PermitPeriod, domain: h.e.d.Name, permits: map[uint64]*pairing.G1{}}
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", c.redeemRequest(t, created.Code), &c.pkg); st != 200 {
		t.Fatalf("redeem: %d %s", st, body)
	}
	idh, err := pairing.NewIDHash(c.pkg.Domain, c.pkg.ID, c.pkg.Salt)
	if err != nil || hex.EncodeToString(idh[:]) != c.pkg.IDHash || c.pkg.IDHash != created.IDHash {
		t.Fatalf("idhash does not match the package")
	}
	c.id = idh
	key := h.e.fetch(t, "client", c.pkg.ClientTicket, idh, c.sealKey)[0]
	c.token = pairing.ExtractPIN(c.domain, idh, key, pinBytes(pin))
	if c.period != 0 {
		if err := c.fetchPermits(t, h.e, c.pkg.PermitTicket); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func pinBytes(pin string) []byte {
	if pin == "" {
		return nil
	}
	return []byte(pin)
}

func (c *tclient) fetchPermits(t testing.TB, e *env, tk string) error {
	keys, err := e.tryFetch("permit", tk, c.id, c.sealKey)
	if err != nil {
		return err
	}
	for slot, k := range keys {
		c.permits[slot] = k
	}
	return nil
}

func (e *env) fetch(t testing.TB, kind, tk string, id pairing.IDHash, sealKey []byte) map[uint64]*pairing.G1 {
	t.Helper()
	out, err := e.tryFetch(kind, tk, id, sealKey)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryFetch posts the ticket to every DTA, checks every DLEQ proof and combines the
// shares per slot.
func (e *env) tryFetch(kind, tk string, id pairing.IDHash, sealKey []byte) (map[uint64]*pairing.G1, error) {
	b := e.d.Bundle
	perSlot := map[uint64][]pairing.IssuedShare{}
	for _, d := range b.DTAs {
		resp, err := postDTA(context.Background(), http.DefaultClient, d.URL+"/v1/shares/"+kind, tk)
		if err != nil {
			return nil, fmt.Errorf("DTA %d: %w", d.Index, err)
		}
		c, _ := d.CommitmentPoint()
		for _, sh := range resp.Shares {
			plain, err := wire.Open(sealKey, &wire.SealContext{Domain: b.Domain, DTA: d.Index, Kind: kind, Slot: sh.Slot, TicketSHA256: sha256.Sum256([]byte(tk))}, sh.Sealed)
			if err != nil || len(plain) != pairing.G1Size+pairing.DLEQProofSize {
				return nil, fmt.Errorf("DTA %d: the sealed share does not open: %v", d.Index, err)
			}
			s, err := pairing.DecodeG1(plain[:pairing.G1Size])
			if err != nil {
				return nil, err
			}
			p, err := pairing.DecodeDLEQProof(plain[pairing.G1Size:])
			if err != nil {
				return nil, err
			}
			perSlot[sh.Slot] = append(perSlot[sh.Slot], pairing.IssuedShare{Index: d.Index, Commitment: c, Share: s, Proof: p})
		}
	}
	out := map[uint64]*pairing.G1{}
	for slot, shares := range perSlot {
		base := pairing.IdentityPoint(id)
		if kind == "permit" {
			base = pairing.PermitPoint(id, slot, b.PermitPeriod)
		}
		if err := pairing.VerifyShares(base, shares, func(i uint32) []byte { return pairing.ShareContext(b.Domain, i, kind, slot) }); err != nil {
			return nil, err
		}
		idx := make([]uint32, len(shares))
		pts := make([]*pairing.G1, len(shares))
		for i, s := range shares {
			idx[i], pts[i] = s.Index, s.Share
		}
		k, err := pairing.Combine(pairing.Additive, idx, pts)
		if err != nil {
			return nil, err
		}
		out[slot] = k
	}
	return out, nil
}

// loginResult is what one login attempt gave.
type loginResult struct {
	status  int
	body    []byte
	fin     wire.FinishResponse
	failure wire.LoginFailure
	key     []byte // client's session key on success
}

// loginOpts tweak a login attempt.
type loginOpts struct {
	slot    *uint64 // default: current slot
	binding []byte  // override of the client's channel binding
	// unbound asks the server for a login without channel binding (as a browser
	// does); the client binds to binding, nil by default.
	unbound bool
	renew   bool // a permit renewal: no permit, slot 0, purpose "renew"
	// authRequest is sent with pass 2 (wire.FinishRequest.AuthRequest), as the
	// OpenID Provider's login page does.
	authRequest string
	days        int    // of a renewal
	purpose     string // override of the purpose sent
	// finishAt is the server that gets pass 2 (default: the one that got pass 1),
	// another replica on the same store.
	finishAt *harness
	// beforeFinish runs just before pass 2 is sent (e.g. a barrier, so that
	// concurrent logins send their pass 2 together).
	beforeFinish func()
}

// login runs the whole login with the given PIN over h's HTTP client.
func (h *harness) login(t testing.TB, c *tclient, pin string, o loginOpts) loginResult {
	t.Helper()
	slot := pairing.Domain{Name: c.domain, PermitPeriod: c.period}.Slot(time.Now())
	if o.slot != nil {
		slot = *o.slot
	}
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain, PermitPeriod: c.period}, IDHash: c.id, Token: c.token, Slot: slot}
	req := wire.StartRequest{Purpose: o.purpose, Unbound: o.unbound}
	if o.renew {
		pc = &pairing.Client{Domain: pairing.Domain{Name: c.domain}, IDHash: c.id, Token: c.token}
		if o.purpose == "" {
			req.Purpose = wire.PurposeRenew
		}
		req.Days = o.days
	} else if c.period != 0 {
		pc.Permit = c.permits[slot]
		if pc.Permit == nil {
			pc.Permit = c.permits[slot-1] // a stale permit: the server must refuse it
		}
		if pc.Permit == nil {
			t.Fatalf("no permit for slot %d", slot)
		}
	}
	cs, p1, err := pc.Start(nil, pinBytes(pin))
	if err != nil {
		t.Fatal(err)
	}
	req.Pass1, _ = p1.MarshalBinary()
	var sr wire.StartResponse
	cl := h.http
	st, body := do(t, cl, "POST", h.url+"/v1/login/start", "", req, &sr)
	if st != 200 {
		return loginResult{status: st, body: body}
	}
	var ch pairing.Challenge
	if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
		t.Fatal(err)
	}
	binding := o.binding
	if binding == nil && !o.unbound && h.ts != nil && h.ts.TLS != nil { // h.ts is nil for a server in a child process
		binding = h.tlsBinding(t)
	}
	p2, err := cs.Respond(&ch, binding)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := p2.MarshalBinary()
	res := loginResult{}
	finishURL := h.url
	if o.finishAt != nil {
		finishURL = o.finishAt.url
	}
	if o.beforeFinish != nil {
		o.beforeFinish()
	}
	res.status, res.body = do(t, cl, "POST", finishURL+"/v1/login/finish", "", wire.FinishRequest{Pass2: b2, AuthRequest: o.authRequest}, &res.fin)
	if res.status == 200 {
		var f pairing.Finish
		if err := f.UnmarshalBinary(res.fin.Finish); err != nil {
			t.Fatal(err)
		}
		if res.key, err = cs.Finish(&f); err != nil {
			t.Fatalf("server not authentic: %v", err)
		}
	} else if res.status == 401 {
		json.Unmarshal(res.body, &res.failure)
	}
	return res
}

// tlsBinding returns the tls-exporter value of h's (single, kept-alive) TLS connection.
func (h *harness) tlsBinding(t testing.TB) []byte {
	t.Helper()
	resp, err := h.http.Get(h.url + "/livez")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b, err := resp.TLS.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// singleConnTLS makes h's client use one TLS connection, so the binding seen by the
// client is the one of the connection that carries pass 2.
func (h *harness) singleConnTLS() {
	tr := h.ts.Client().Transport.(*http.Transport).Clone()
	tr.MaxConnsPerHost = 1
	tr.MaxIdleConnsPerHost = 1
	tr.TLSClientConfig.MinVersion = tls.VersionTLS13
	h.http = &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
