package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server/middleware"
)

func TestProvisionNamesBadDTA(t *testing.T) {
	e := newEnv(t, 0)
	if err := pairing.VerifyServerShare(pairing.G1Generator(), e.sQ); err == nil {
		t.Fatal("sQ must not be Q")
	}
	e.d.DTAs[1].Stop()
	_, err := Provision(context.Background(), e.d.Bundle, e.d.Registrar, nil)
	var de *DTAError
	if !errors.As(err, &de) || len(de.Failed) != 1 || de.Failed[2] == nil {
		t.Fatalf("want a DTAError naming DTA 2, got %v", err)
	}
	if !strings.Contains(err.Error(), "DTA 2") {
		t.Fatalf("error does not name the DTA: %v", err)
	}
}

func TestLoginEndToEnd(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "alice@example.test"}, "1234")
	if c.pkg.LastSlot-c.pkg.FirstSlot != defaultPermitDays-1 || c.pkg.FirstSlot != (pairing.Domain{PermitPeriod: 3600}).Slot(time.Now()) {
		t.Fatalf("permit slots %d..%d", c.pkg.FirstSlot, c.pkg.LastSlot)
	}
	res := h.login(t, c, "1234", loginOpts{})
	if res.status != 200 {
		t.Fatalf("login: %d %s", res.status, res.body)
	}
	if res.fin.ID != "alice@example.test" {
		t.Fatalf("logged in as %q", res.fin.ID)
	}
	keys, err := middleware.FetchKeys(context.Background(), nil, h.url)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := keys.Verify(res.fin.AccessToken, "example.test", "example.test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if claims.Subject != "alice@example.test" || claims.IDHash != c.pkg.IDHash || claims.ID == "" ||
		!claims.ExpiresAt.Time.Equal(res.fin.ExpiresAt) {
		t.Fatalf("claims %+v", claims)
	}
	sk, ok := h.srv.SessionKey(claims.ID)
	if !ok || !bytes.Equal(sk, res.key) {
		t.Fatal("the server's session key differs from the client's")
	}
	if _, ok := h.srv.SessionKey("nope"); ok {
		t.Fatal("session key for an unknown jti")
	}

	// Permits with the access token; the DTAs issue them.
	var pt wire.PermitTicket
	if st, body := do(t, h.http, "POST", h.url+"/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: 3}, &pt); st != 200 {
		t.Fatalf("permits: %d %s", st, body)
	}
	if pt.LastSlot-pt.FirstSlot != 2 {
		t.Fatalf("permit slots %d..%d", pt.FirstSlot, pt.LastSlot)
	}
	// More than the enrolment's permit_days (the default, 7) is cut to it.
	var long wire.PermitTicket
	if st, body := do(t, h.http, "POST", h.url+"/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: 30}, &long); st != 200 || long.LastSlot-long.FirstSlot != defaultPermitDays-1 {
		t.Fatalf("permits for 30 days: %d %s, want %d", st, body, defaultPermitDays)
	}
	if err := c.fetchPermits(t, e, pt.Ticket); err != nil {
		t.Fatal(err)
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/permits", "", wire.PermitRequest{Days: 3}, nil); st != 401 {
		t.Fatalf("permits without a token: %d", st)
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/permits", res.fin.AccessToken, wire.PermitRequest{Days: 31}, nil); st != 400 {
		t.Fatalf("permits for 31 days: %d", st)
	}

	// Public endpoints.
	resp, err := http.Get(h.url + "/v1/bundle")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got.Bytes(), e.d.BundleFile) {
		t.Fatal("GET /v1/bundle is not the bundle file byte for byte")
	}
	// The metrics are not public: per-request timings are for the operations listener.
	for path, want := range map[string]int{"/livez": 200, "/readyz": 200, "/metrics": 404, "/nope": 404} {
		if st, _ := do(t, h.http, "GET", h.url+path, "", nil, nil); st != want {
			t.Errorf("GET %s: %d, want %d", path, st, want)
		}
	}
	if st, _ := do(t, h.http, "GET", h.url+"/v1/login/start", "", nil, nil); st != 405 {
		t.Errorf("GET /v1/login/start: %d, want 405", st)
	}
	if st, body := do(t, h.http, "GET", h.url+"/metrics", "", nil, nil); st != 404 || !strings.Contains(string(body), "not_found") {
		t.Errorf("public GET /metrics: %d %s, want 404 not_found", st, body)
	}
	metrics := h.metrics(t)
	if !strings.Contains(string(metrics), `polyroot_server_logins_total{result="ok",step="finish"} 1`) {
		t.Errorf("metrics lack the login:\n%s", metrics)
	}
	if strings.Contains(string(metrics), c.pkg.IDHash) || strings.Contains(string(metrics), "alice") {
		t.Error("an identity in the metrics")
	}
	handler := h.srv.Handler()
	h.stop()
	rec := &recorder{header: http.Header{}}
	handler.ServeHTTP(rec, httptestRequest("GET", "/readyz"))
	if rec.status != 503 || !strings.Contains(rec.body.String(), "not_ready") {
		t.Errorf("readyz after Close: %d %s", rec.status, rec.body.String())
	}
	checkNoSecrets(t, e, h, "1234")
}

// checkNoSecrets looks for the server's secrets and PINs in every log line so far.
func checkNoSecrets(t *testing.T, e *env, h *harness, pins ...string) {
	t.Helper()
	logs := logBuf.String()
	secrets := map[string]string{
		"sQ":            hex.EncodeToString(e.sQ.Bytes()),
		"registrar key": hex.EncodeToString(e.d.Registrar.Seed()),
		"token key":     hex.EncodeToString(h.tokenKey.Seed()),
	}
	for _, p := range pins {
		secrets["PIN "+p] = "=" + p + " "
	}
	for name, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("%s in the logs", name)
		}
	}
}

// TestAdminListener: with Config.AdminListener the admin routes answer 404 not_found on
// Handler, like any unknown path, and AdminHandler serves them (and /livez) alone.
func TestAdminListener(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.AdminListener = true })
	admin := httptest.NewServer(h.srv.AdminHandler())
	defer admin.Close()
	req := wire.EnrolmentRequest{ID: "carol"}
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, req, nil); st != 404 || !strings.Contains(string(body), `"not_found"`) {
		t.Fatalf("the admin API on the public handler: %d %s", st, body)
	}
	if st, _ := do(t, h.http, "POST", admin.URL+"/v1/admin/enrolments", "", req, nil); st != 401 {
		t.Fatalf("the admin handler without the token: %d", st)
	}
	var created wire.EnrolmentCreated
	if st, body := do(t, h.http, "POST", admin.URL+"/v1/admin/enrolments", testAdmin, req, &created); st != 200 || created.Code == "" {
		t.Fatalf("the admin handler: %d %s", st, body)
	}
	if st, body := do(t, h.http, "POST", admin.URL+"/v1/enrol", "", h.redeemRequest(t, created.Code), nil); st != 404 {
		t.Fatalf("enrolment on the admin handler: %d %s", st, body)
	}
	for _, u := range []string{h.url, admin.URL} {
		if st, _ := do(t, h.http, "GET", u+"/livez", "", nil, nil); st != 200 {
			t.Errorf("GET %s/livez: %d", u, st)
		}
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/enrol", "", h.redeemRequest(t, created.Code), nil); st != 200 {
		t.Fatalf("the code made on the admin handler, redeemed on the public one: %d", st)
	}
}

func TestCodeSingleUseAndAdminAuth(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	var created wire.EnrolmentCreated
	if st, _ := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", "", wire.EnrolmentRequest{ID: "x"}, nil); st != 401 {
		t.Fatalf("no admin token: %d", st)
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin+"x", wire.EnrolmentRequest{ID: "x"}, nil); st != 401 {
		t.Fatalf("wrong admin token: %d", st)
	}
	// What SECURITY.md tells operators to alert on.
	if m := h.metrics(t); !strings.Contains(m, `polyroot_server_http_requests_total{route="/v1/admin/enrolments",status="401"} 2`) {
		t.Errorf("refused admin tokens are not counted:\n%s", m)
	}
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "bob"}, &created); st != 200 || len(created.Code) != 20 {
		t.Fatalf("create: %d %s", st, body)
	}
	// A request whose key was replaced (by someone who saw it but not the code) fails
	// the proof, and the code stays usable by its owner.
	owner := h.redeemRequest(t, created.Code)
	swapped := *owner
	swapped.ClientKey = h.redeemRequest(t, created.Code).ClientKey
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", &swapped, nil); st != 403 || !strings.Contains(string(body), "code_proof_failed") {
		t.Fatalf("redeem with a replaced key: %d %s", st, body)
	}
	var pkg wire.EnrolPackage
	if st, _ := do(t, h.http, "POST", h.url+"/v1/enrol", "", owner, &pkg); st != 200 {
		t.Fatal("redeem failed")
	}
	if pkg.PermitTicket != "" || pkg.FirstSlot != 0 || pkg.LastSlot != 0 {
		t.Fatal("a permit ticket without permits")
	}
	if st, body := do(t, h.http, "POST", h.url+"/v1/enrol", "", h.redeemRequest(t, created.Code), nil); st != 404 || !strings.Contains(string(body), "unknown_code") {
		t.Fatalf("second redemption: %d %s", st, body)
	}
	for _, req := range []wire.IdentityRequest{{ID: "nobody"}, {IDHash: strings.Repeat("ab", 32)}} {
		for _, path := range []string{"/v1/admin/revoke", "/v1/admin/unblock"} {
			if st, body := do(t, h.http, "POST", h.url+path, testAdmin, req, nil); st != 404 || !strings.Contains(string(body), "unknown_identity") {
				t.Fatalf("%s %+v: %d %s", path, req, st, body)
			}
		}
	}
}

func TestWrongPINBlockUnblock(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "carol"}, "1111")
	var bodies [][]byte
	for want := 2; want >= 0; want-- {
		res := h.login(t, c, "9999", loginOpts{})
		if res.status != 401 || res.failure.Code != "login_failed" || res.failure.TriesLeft != want {
			t.Fatalf("wrong PIN: %d %s, want tries_left %d", res.status, res.body, want)
		}
		bodies = append(bodies, res.body)
	}
	// Blocked: the right PIN fails exactly like a wrong one.
	res := h.login(t, c, "1111", loginOpts{})
	if res.status != 401 || !bytes.Equal(res.body, bodies[2]) {
		t.Fatalf("blocked, right PIN: %d %s", res.status, res.body)
	}
	// Unknown identity: the same answer as a first wrong PIN.
	ghost := *c
	ghost.id = pairing.IDHash{1, 2, 3}
	res = h.login(t, &ghost, "1111", loginOpts{})
	if res.status != 401 || !bytes.Equal(res.body, bodies[0]) {
		t.Fatalf("unknown identity: %d %s, want %s", res.status, res.body, bodies[0])
	}
	// Unblock by ID.
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/unblock", testAdmin, wire.IdentityRequest{ID: "carol"}, nil); st != 200 {
		t.Fatalf("unblock: %d %s", st, body)
	}
	if res := h.login(t, c, "1111", loginOpts{}); res.status != 200 {
		t.Fatalf("after unblock: %d %s", res.status, res.body)
	}
	// A success resets the count.
	if res := h.login(t, c, "0000", loginOpts{}); res.failure.TriesLeft != 2 {
		t.Fatalf("after success: %s", res.body)
	}
	if res := h.login(t, c, "1111", loginOpts{}); res.status != 200 {
		t.Fatalf("second success: %d %s", res.status, res.body)
	}
	if res := h.login(t, c, "0000", loginOpts{}); res.failure.TriesLeft != 2 {
		t.Fatalf("count not reset: %s", res.body)
	}
	checkNoSecrets(t, e, h, "1111", "9999", "0000")
}

// waitSlotStart sleeps until just after the next permit-slot boundary.
func waitSlotStart(period uint64) {
	now := time.Now()
	next := time.Unix((now.Unix()/int64(period)+1)*int64(period), 0).Add(50 * time.Millisecond)
	time.Sleep(time.Until(next))
}

func TestRevocation(t *testing.T) {
	const period = 2
	e := newEnv(t, period)
	grace := func(c *Config) { c.Grace = 100 * time.Millisecond }
	h1 := e.start(t, t.TempDir(), false, grace)
	waitSlotStart(period)
	c := h1.enrol(t, wire.EnrolmentRequest{ID: "dave", PermitDays: 1}, "4242")
	if c.pkg.FirstSlot != c.pkg.LastSlot {
		t.Fatalf("permit slots %d..%d", c.pkg.FirstSlot, c.pkg.LastSlot)
	}
	// A second instance with a copy of the state from before the revocation.
	dir2 := t.TempDir()
	var snap bytes.Buffer
	if err := h1.srv.Backup(&snap); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "server.db"), snap.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	h2 := e.start(t, dir2, false, grace)
	res2 := h2.login(t, c, "4242", loginOpts{})
	if res := h1.login(t, c, "4242", loginOpts{}); res.status != 200 || res2.status != 200 {
		t.Fatalf("before revocation: %d %d %s", res.status, res2.status, res2.body)
	}
	var rr wire.RevokeResult
	if st, body := do(t, h1.http, "POST", h1.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "dave"}, &rr); st != 200 || len(rr.IDHashes) != 1 || rr.IDHashes[0] != c.pkg.IDHash || len(rr.Unreachable) != 0 || rr.AlreadyRevoked != 0 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	rr = wire.RevokeResult{}
	if st, body := do(t, h1.http, "POST", h1.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{ID: "dave"}, &rr); st != 200 || len(rr.IDHashes) != 1 || rr.AlreadyRevoked != 1 {
		t.Fatalf("revoke again: %d %s; want it counted as revoked before", st, body)
	}
	res := h1.login(t, c, "4242", loginOpts{})
	if res.status != 401 || res.failure.Code != "login_failed" || res.failure.TriesLeft != 2 {
		t.Fatalf("revoked, here: %d %s", res.status, res.body)
	}
	// The second instance does not know; its permit tickets are refused by the DTAs,
	// so in the next slot the identity has no permit and cannot log in.
	waitSlotStart(period)
	time.Sleep(150 * time.Millisecond) // past the grace
	var pt wire.PermitTicket
	if st, body := do(t, h2.http, "POST", h2.url+"/v1/permits", res2.fin.AccessToken, wire.PermitRequest{Days: 1}, &pt); st != 200 {
		t.Fatalf("permit ticket from the second instance: %d %s", st, body)
	}
	if err := c.fetchPermits(t, e, pt.Ticket); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the DTAs issued a permit to a revoked identity: %v", err)
	}
	res = h2.login(t, c, "4242", loginOpts{}) // with the stale permit for the previous slot
	if res.status != 401 || res.failure.Code != "login_failed" {
		t.Fatalf("revoked, second instance, next slot: %d %s", res.status, res.body)
	}
	old := c.pkg.FirstSlot
	res = h2.login(t, c, "4242", loginOpts{slot: &old})
	if res.status != 409 || !strings.Contains(string(res.body), "permit_slot") {
		t.Fatalf("old slot: %d %s", res.status, res.body)
	}
}

type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestReplayAndReuse(t *testing.T) {
	e := newEnv(t, 0)
	var clk clock
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.Now = clk.now })
	c := h.enrol(t, wire.EnrolmentRequest{ID: "erin"}, "5555")
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain}, IDHash: c.id, Token: c.token}

	start := func() (*pairing.ClientSession, *pairing.Challenge) {
		cs, p1, err := pc.Start(nil, []byte("5555"))
		if err != nil {
			t.Fatal(err)
		}
		b1, _ := p1.MarshalBinary()
		var sr wire.StartResponse
		if st, body := do(t, h.http, "POST", h.url+"/v1/login/start", "", wire.StartRequest{Pass1: b1}, &sr); st != 200 {
			t.Fatalf("start: %d %s", st, body)
		}
		var ch pairing.Challenge
		if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
			t.Fatal(err)
		}
		return cs, &ch
	}
	finish := func(cs *pairing.ClientSession, ch *pairing.Challenge) (int, []byte) {
		p2, err := cs.Respond(ch, nil)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := p2.MarshalBinary()
		return do(t, h.http, "POST", h.url+"/v1/login/finish", "", wire.FinishRequest{Pass2: b2}, nil)
	}
	cs, ch := start()
	p2, _ := cs.Respond(ch, nil)
	b2, _ := p2.MarshalBinary()
	if st, body := do(t, h.http, "POST", h.url+"/v1/login/finish", "", wire.FinishRequest{Pass2: b2}, nil); st != 200 {
		t.Fatalf("finish: %d %s", st, body)
	}
	// Replayed pass 2.
	if st, body := do(t, h.http, "POST", h.url+"/v1/login/finish", "", wire.FinishRequest{Pass2: b2}, nil); st != 404 || !strings.Contains(string(body), "unknown_session") {
		t.Fatalf("replayed pass 2: %d %s", st, body)
	}
	// Reused challenge: a fresh client session answering a used challenge.
	cs2, _, _ := pc.Start(nil, []byte("5555"))
	if st, _ := finish(cs2, ch); st != 404 {
		t.Fatalf("reused challenge: %d", st)
	}
	// Expired challenge.
	cs, ch = start()
	clk.advance(31 * time.Second)
	if st, _ := finish(cs, ch); st != 404 {
		t.Fatalf("expired challenge: %d", st)
	}
	// None of these counted as a failure.
	if n := h.srv.fails.count(c.id); n != 0 {
		t.Fatalf("failures counted: %d", n)
	}
}

func TestMalformedBodies(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	c := h.enrol(t, wire.EnrolmentRequest{ID: "frank"}, "7777")
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain}, IDHash: c.id, Token: c.token}
	cs, p1, _ := pc.Start(nil, []byte("7777"))
	b1, _ := p1.MarshalBinary()
	variants := func(b []byte) [][]byte {
		var out [][]byte
		for i := 0; i < len(b); i += 5 {
			f := bytes.Clone(b)
			f[i] ^= 1 << (i % 8)
			out = append(out, f)
		}
		return append(out, b[:len(b)-1], b[:0], append(bytes.Clone(b), 0))
	}
	for _, v := range variants(b1) {
		st, body := do(t, h.http, "POST", h.url+"/v1/login/start", "", wire.StartRequest{Pass1: v}, nil)
		// A flip in the idhash or the slot gives a well-formed pass 1 (a challenge or a
		// slot refusal); a flip in a point gives 400.
		if st != 200 && st != 400 && st != 409 {
			t.Fatalf("pass 1 variant: %d %s", st, body)
		}
	}
	var sr wire.StartResponse
	do(t, h.http, "POST", h.url+"/v1/login/start", "", wire.StartRequest{Pass1: b1}, &sr)
	var ch pairing.Challenge
	ch.UnmarshalBinary(sr.Challenge)
	p2, _ := cs.Respond(&ch, nil)
	b2, _ := p2.MarshalBinary()
	for _, v := range variants(b2) {
		st, body := do(t, h.http, "POST", h.url+"/v1/login/finish", "", wire.FinishRequest{Pass2: v}, nil)
		if st != 400 && st != 401 && st != 404 {
			t.Fatalf("pass 2 variant: %d %s", st, body)
		}
	}
	for _, raw := range []string{"", "{", `{"pass1":1}`, `{"pass1":"!!"}`, `{"pass1":"AA==","x":1}`, "[]", "null"} {
		for _, path := range []string{"/v1/login/start", "/v1/login/finish"} {
			req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			resp, err := h.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("%s %q: %d", path, raw, resp.StatusCode)
			}
		}
	}
}

func FuzzLoginBodies(f *testing.F) {
	e := newEnv(f, 0)
	h := e.start(f, f.TempDir(), false)
	handler := h.srv.Handler()
	c := h.enrol(f, wire.EnrolmentRequest{ID: "fuzz"}, "1")
	pc := &pairing.Client{Domain: pairing.Domain{Name: c.domain}, IDHash: c.id, Token: c.token}
	_, p1, _ := pc.Start(nil, []byte("1"))
	b1, _ := p1.MarshalBinary()
	j1, _ := json.Marshal(wire.StartRequest{Pass1: b1})
	f.Add(true, j1)
	f.Add(false, []byte(`{"pass2":"`+strings.Repeat("A", 128)+`"}`))
	f.Add(false, []byte(`{}`))
	f.Fuzz(func(t *testing.T, start bool, body []byte) {
		path := "/v1/login/finish"
		if start {
			path = "/v1/login/start"
		}
		req, _ := http.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "192.0.2.1:1234"
		rec := &recorder{header: http.Header{}}
		handler.ServeHTTP(rec, req)
		if rec.status >= 500 {
			t.Fatalf("%s: status %d: %s", path, rec.status, rec.body.String())
		}
	})
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }

func TestRestartKeepsState(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	a := h.enrol(t, wire.EnrolmentRequest{ID: "a"}, "1")
	b := h.enrol(t, wire.EnrolmentRequest{ID: "b"}, "2")
	c := h.enrol(t, wire.EnrolmentRequest{ID: "c"}, "3")
	var pendingCode wire.EnrolmentCreated
	do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "later"}, &pendingCode)
	h.login(t, a, "x", loginOpts{})
	for range 3 {
		h.login(t, b, "x", loginOpts{})
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: c.pkg.IDHash}, nil); st != 200 {
		t.Fatal("revoke failed")
	}
	h.restart(t)
	if res := h.login(t, a, "x", loginOpts{}); res.failure.TriesLeft != 1 {
		t.Fatalf("a's count lost: %s", res.body)
	}
	if res := h.login(t, b, "2", loginOpts{}); res.status != 401 || res.failure.TriesLeft != 0 {
		t.Fatalf("b's block lost: %d %s", res.status, res.body)
	}
	if res := h.login(t, c, "3", loginOpts{}); res.status != 401 {
		t.Fatalf("c's revocation lost: %d %s", res.status, res.body)
	}
	if res := h.login(t, a, "1", loginOpts{}); res.status != 200 {
		t.Fatalf("a's enrolment lost: %d %s", res.status, res.body)
	}
	if st, _ := do(t, h.http, "POST", h.url+"/v1/enrol", "", h.redeemRequest(t, pendingCode.Code), nil); st != 200 {
		t.Fatal("a pending code was lost")
	}
}

func TestTemporaryIdentity(t *testing.T) {
	e := newEnv(t, 0)
	frozen := time.Now()
	var clk clock // the server's clock stands still until advanced: no flakes under load
	h := e.start(t, t.TempDir(), false, func(c *Config) {
		c.Now = func() time.Time { return frozen.Add(time.Duration(clk.off.Load())) }
	})
	var created wire.EnrolmentCreated
	if st, body := do(t, h.http, "POST", h.url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: "short", TTL: 60}, &created); st != 200 ||
		created.NotAfter == nil || !created.NotAfter.Equal(frozen.Add(time.Minute)) || !created.ExpiresAt.Equal(*created.NotAfter) {
		t.Fatalf("a 60 s identity: %d %s; want not_after in 60 s, and its code no later", st, body)
	}
	c := h.enrol(t, wire.EnrolmentRequest{ID: "maintenance", Device: true, TTL: 1}, "")
	if c.pkg.NotAfter == nil || !c.pkg.Device {
		t.Fatal("package lacks not_after or device")
	}
	if res := h.login(t, c, "", loginOpts{}); res.status != 200 {
		t.Fatalf("temporary identity, in time: %d %s", res.status, res.body)
	}
	clk.advance(time.Second)
	res := h.login(t, c, "", loginOpts{})
	if res.status != 401 || res.failure.Code != "login_failed" || res.failure.TriesLeft != 2 {
		t.Fatalf("temporary identity, expired: %d %s", res.status, res.body)
	}
}

func TestChannelBinding(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), true)
	h.singleConnTLS()
	c := h.enrol(t, wire.EnrolmentRequest{ID: "grace"}, "2468")
	if res := h.login(t, c, "2468", loginOpts{}); res.status != 200 {
		t.Fatalf("over TLS: %d %s", res.status, res.body)
	}
	for range 4 { // more than MaxFailures: none is counted
		res := h.login(t, c, "2468", loginOpts{binding: bytes.Repeat([]byte{7}, 32)})
		if res.status != 401 || !strings.Contains(string(res.body), "channel_binding_mismatch") {
			t.Fatalf("other binding: %d %s", res.status, res.body)
		}
	}
	if res := h.login(t, c, "0000", loginOpts{}); res.failure.TriesLeft != 2 {
		t.Fatalf("binding mismatches were counted: %s", res.body)
	}
	if res := h.login(t, c, "2468", loginOpts{}); res.status != 200 {
		t.Fatalf("over TLS again: %d %s", res.status, res.body)
	}
	// The binding of the plain-HTTP path is nil: a client that binds to a TLS channel
	// that the server does not see fails too.
	e2 := e.start(t, t.TempDir(), false)
	c2 := e2.enrol(t, wire.EnrolmentRequest{ID: "grace"}, "2468")
	if res := e2.login(t, c2, "2468", loginOpts{binding: bytes.Repeat([]byte{1}, 32)}); !strings.Contains(string(res.body), "channel_binding_mismatch") {
		t.Fatalf("binding without TLS: %d %s", res.status, res.body)
	}
}

// TestLoginUnbound: a browser's login without channel binding succeeds over TLS, and
// its token's amr says it was not channel-bound; an interceptor that marks a native
// client's login unbound gets a mismatch, not counted.
func TestLoginUnbound(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), true)
	h.singleConnTLS()
	c := h.enrol(t, wire.EnrolmentRequest{ID: "heidi"}, "1357")
	amr := func(res loginResult) []string {
		t.Helper()
		if res.status != 200 {
			t.Fatalf("login: %d %s", res.status, res.body)
		}
		claims, err := middleware.NewKeySet(h.srv.TokenPublicKey()).Verify(res.fin.AccessToken, "example.test", "example.test", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return claims.AMR
	}
	if got := amr(h.login(t, c, "1357", loginOpts{unbound: true})); !slices.Equal(got, []string{"mpin", "pin"}) {
		t.Errorf("unbound login: amr %v", got)
	}
	if got := amr(h.login(t, c, "1357", loginOpts{})); !slices.Equal(got, []string{"mpin", "pin", "tls-cb"}) {
		t.Errorf("bound login: amr %v", got)
	}
	for range 4 { // more than MaxFailures: none is counted
		res := h.login(t, c, "1357", loginOpts{unbound: true, binding: h.tlsBinding(t)})
		if res.status != 401 || !strings.Contains(string(res.body), "channel_binding_mismatch") {
			t.Fatalf("unbound request, bound client: %d %s", res.status, res.body)
		}
	}
	if res := h.login(t, c, "0000", loginOpts{unbound: true}); res.failure.TriesLeft != 2 {
		t.Fatalf("an unbound wrong PIN counts once, mismatches not at all: %s", res.body)
	}
}

// TestRefuseUnboundLogins: a server for native clients only refuses a login or renewal
// that asks for no channel binding, before anything is checked or counted, and bound
// ones go on; it cannot be an OpenID Provider too.
func TestRefuseUnboundLogins(t *testing.T) {
	e := newEnv(t, 3600)
	h := e.start(t, t.TempDir(), true, func(c *Config) { c.RefuseUnboundLogins = true })
	h.singleConnTLS()
	c := h.enrol(t, wire.EnrolmentRequest{ID: "ivan"}, "1357")
	for name, o := range map[string]loginOpts{
		"fail/login-wrong-pin": {unbound: true},
		"fail/renewal":         {unbound: true, renew: true},
	} {
		t.Run(name, func(t *testing.T) {
			res := h.login(t, c, "0000", o)
			if res.status != http.StatusForbidden || !strings.Contains(string(res.body), `"unbound_refused"`) {
				t.Fatalf("%d %s, want 403 unbound_refused", res.status, res.body)
			}
		})
	}
	if res := h.login(t, c, "1357", loginOpts{}); res.status != 200 {
		t.Fatalf("bound login: %d %s", res.status, res.body)
	}
	if res := h.login(t, c, "0000", loginOpts{}); res.failure.TriesLeft != 2 {
		t.Fatalf("the refused logins counted: %s", res.body)
	}
	cfg := e.config(t.TempDir(), h.tokenKey)
	cfg.RefuseUnboundLogins, cfg.OIDC.Issuer = true, "https://example.test/oidc"
	if _, err := New(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "OpenID Provider needs unbound logins") {
		t.Fatalf("with an OpenID Provider: %v", err)
	}
}

func TestConcurrentLogins(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false)
	h.http = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: time.Minute}
	const idents, per = 16, 4 // 64 goroutines
	clients := make([]*tclient, idents)
	for i := range clients {
		clients[i] = h.enrol(t, wire.EnrolmentRequest{ID: "user" + string(rune('a'+i))}, "1357")
	}
	var ok, failed atomic.Int64
	tries := make([][]int, idents)
	var mu sync.Mutex
	var wg sync.WaitGroup
	begin := make(chan struct{})
	for i := range idents {
		pin := "1357"
		if i%2 == 1 {
			pin = "0000"
		}
		for range per {
			wg.Go(func() {
				<-begin
				res := h.login(t, clients[i], pin, loginOpts{})
				switch res.status {
				case 200:
					ok.Add(1)
				case 401:
					failed.Add(1)
					mu.Lock()
					tries[i] = append(tries[i], res.failure.TriesLeft)
					mu.Unlock()
				default:
					t.Errorf("status %d %s", res.status, res.body)
				}
			})
		}
	}
	close(begin)
	wg.Wait()
	if ok.Load() != idents/2*per || failed.Load() != idents/2*per {
		t.Fatalf("%d successes, %d failures", ok.Load(), failed.Load())
	}
	for i := 1; i < idents; i += 2 {
		if n := h.srv.fails.count(clients[i].id); n != per {
			t.Errorf("identity %d: %d failures counted, want %d", i, n, per)
		}
		sum := 0
		for _, x := range tries[i] {
			sum += x
		}
		if sum != 2+1+0+0 {
			t.Errorf("identity %d: tries left %v", i, tries[i])
		}
	}
	h.restart(t)
	for i := 1; i < idents; i += 2 {
		if n := h.srv.fails.count(clients[i].id); n != per {
			t.Errorf("after restart, identity %d: %d failures", i, n)
		}
	}
}

func httptestRequest(method, path string) *http.Request {
	req, _ := http.NewRequest(method, path, nil)
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, 0)
	h := e.start(t, t.TempDir(), false, func(c *Config) { c.RatePerSecond, c.RateBurst = 0.5, 2 })
	var last *http.Response
	for range 3 {
		resp, err := h.http.Get(h.url + "/v1/bundle")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		last = resp
	}
	if last.StatusCode != 429 || last.Header.Get("Retry-After") == "" {
		t.Fatalf("third request: %d, Retry-After %q", last.StatusCode, last.Header.Get("Retry-After"))
	}
}
