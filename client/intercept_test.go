package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/polyroot/polyroot/internal/wire"
)

// recordingInterceptor is a TLS-terminating proxy in front of target with its own CA
// (which the test makes the client trust, as a forced root would be): it records every
// request and response body, and may rewrite the enrolment request first.
type recordingInterceptor struct {
	url      string
	mu       sync.Mutex
	captured [][]byte
	rewrite  func(*wire.RedeemRequest) // nil: passive
}

func newRecordingInterceptor(t *testing.T, e *env, rewrite func(*wire.RedeemRequest)) *recordingInterceptor {
	t.Helper()
	ri := &recordingInterceptor{rewrite: rewrite}
	ca, cert := newCA(t)
	u, _ := url.Parse(e.hs.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = e.hs.Client().Transport
	rp.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		resp.Body.Close()
		ri.record(b)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		return nil
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/enrol" && ri.rewrite != nil {
			var req wire.RedeemRequest
			if json.Unmarshal(b, &req) == nil {
				ri.rewrite(&req)
				b, _ = json.Marshal(&req)
			}
		}
		ri.record(b)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		rp.ServeHTTP(w, r)
	})
	p := httptest.NewUnstartedServer(h)
	p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	p.StartTLS()
	t.Cleanup(p.Close)
	e.roots.AddCert(ca)
	ri.url = p.URL
	return ri
}

func (ri *recordingInterceptor) record(b []byte) {
	ri.mu.Lock()
	ri.captured = append(ri.captured, b)
	ri.mu.Unlock()
}

func (ri *recordingInterceptor) all() []byte {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return bytes.Join(ri.captured, []byte("\n"))
}

// TestEnrolThroughInterceptor enrols through a TLS interceptor the device trusts. What
// it captures is useless to it: the code never crosses, the captured redeem request
// cannot be turned into one for its own key, and the captured tickets get it only
// shares sealed to the victim's key. An interceptor that replaces the key is detected
// as possible interception, and the code survives for its owner.
func TestEnrolThroughInterceptor(t *testing.T) {
	ctx := context.Background()
	t.Run("passive", func(t *testing.T) {
		e := newEnv(t)
		ri := newRecordingInterceptor(t, e, nil)
		code := e.enrolment(t, "victim@example.com", false)
		c := e.open(t)
		if err := c.Enroll(ctx, ri.url, code, []byte("4921"), false); err != nil {
			t.Fatalf("the victim's enrolment through a passive interceptor: %v", err)
		}
		if _, err := c.Login(ctx, e.url, []byte("4921")); err != nil {
			t.Fatalf("the victim's login: %v", err)
		}
		got := ri.all()
		if bytes.Contains(bytes.ToUpper(got), []byte(code)) {
			t.Fatal("the code crossed the interceptor")
		}
		var req wire.RedeemRequest
		var pkg wire.EnrolPackage
		for _, b := range ri.captured {
			if bytes.Contains(b, []byte(`"code_id"`)) {
				json.Unmarshal(b, &req)
			}
			if bytes.Contains(b, []byte(`"client_ticket"`)) {
				json.Unmarshal(b, &pkg)
			}
		}
		if req.CodeID == nil || pkg.ClientTicket == "" {
			t.Fatal("the interceptor did not capture the enrolment")
		}
		// Replay of the captured request with the attacker's key: refused (and the code
		// is used up anyway).
		attackerPub, attackerPriv, _ := wire.NewSealKey()
		forged := req
		forged.ClientKey = attackerPub
		var other wire.EnrolPackage
		if _, err := postJSON(ctx, e.serverHTTP(), e.url+"/v1/enrol", "", &forged, &other); err == nil {
			t.Fatalf("the captured code redeemed for the attacker's key: %v", err)
		}
		// The captured tickets, replayed at every DTA: sealed shares that the attacker's
		// key does not open.
		for _, tk := range []string{pkg.ClientTicket, pkg.PermitTicket} {
			kind := wire.KindClient
			if tk == pkg.PermitTicket {
				kind = wire.KindPermit
			}
			for _, d := range e.d.Bundle.DTAs {
				var resp wire.DTAResponse
				if _, err := postJSON(ctx, e.dtaHTTP, d.URL+"/v1/shares/"+kind, "", wire.DTARequest{Ticket: tk}, &resp); err != nil {
					t.Fatalf("replay at DTA %d: %v", d.Index, err)
				}
				for _, sh := range resp.Shares {
					sc := &wire.SealContext{Domain: e.d.Bundle.Domain, DTA: d.Index, Kind: kind, Slot: sh.Slot, TicketSHA256: sha256.Sum256([]byte(tk))}
					if _, err := wire.Open(attackerPriv, sc, sh.Sealed); !errors.Is(err, wire.ErrSealed) {
						t.Fatalf("DTA %d's %s share opened with the attacker's key: %v", d.Index, kind, err)
					}
				}
			}
		}
	})
	t.Run("key-replaced", func(t *testing.T) {
		e := newEnv(t)
		attackerPub, _, _ := wire.NewSealKey()
		ri := newRecordingInterceptor(t, e, func(r *wire.RedeemRequest) { r.ClientKey = attackerPub })
		code := e.enrolment(t, "victim@example.com", false)
		c := e.open(t)
		err := c.Enroll(ctx, ri.url, code, []byte("4921"), false)
		if !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("enrolment with a replaced key: got %v, want possible interception", err)
		}
		if bytes.Contains(ri.all(), []byte(`"client_ticket"`)) {
			t.Fatal("the interceptor got tickets")
		}
		// The code is still the victim's: a direct enrolment works.
		if err := c.Enroll(ctx, e.url, code, []byte("4921"), false); err != nil {
			t.Fatalf("the victim's direct enrolment after the attempt: %v", err)
		}
	})
	t.Run("tickets-for-another-key", func(t *testing.T) {
		// An interceptor that redeems the victim's request unchanged but could answer
		// with tickets of another enrolment (its own) is caught by the key check.
		e := newEnv(t)
		code := e.enrolment(t, "victim@example.com", false)
		otherCode := e.enrolment(t, "mallory@example.com", false)
		attackerPub, _, _ := wire.NewSealKey()
		req, _ := wire.NewRedeemRequest(otherCode, e.d.Bundle.Domain, attackerPub, nil)
		var otherPkg wire.EnrolPackage
		if _, err := postJSON(ctx, e.serverHTTP(), e.url+"/v1/enrol", "", req, &otherPkg); err != nil {
			t.Fatal(err)
		}
		ca, cert := newCA(t)
		p := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(otherPkg)
		}))
		p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		p.StartTLS()
		t.Cleanup(p.Close)
		e.roots.AddCert(ca)
		c := e.open(t)
		if err := c.Enroll(ctx, p.URL, code, []byte("4921"), false); !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("enrolment answered with another enrolment's package: %v", err)
		}
	})
	t.Run("own-code-for-the-victims-key", func(t *testing.T) {
		// An interceptor holding an enrolment code of its own redeems it for the
		// victim's key (a proof it can make) in place of the victim's request: the
		// answer's tickets name the victim's key, so without the package's MAC the
		// victim would enrol as the attacker's identity.
		e := newEnv(t)
		code := e.enrolment(t, "victim@example.com", false)
		otherCode := e.enrolment(t, "mallory@example.com", false)
		ri := newRecordingInterceptor(t, e, func(r *wire.RedeemRequest) {
			own, _ := wire.NewRedeemRequest(otherCode, e.d.Bundle.Domain, r.ClientKey, r.PermitKey)
			*r = *own
		})
		c := e.open(t)
		if err := c.Enroll(ctx, ri.url, code, []byte("4921"), false); !errors.Is(err, ErrPossibleInterception) {
			t.Fatalf("enrolment answered for the interceptor's own code: %v", err)
		}
		if err := c.Enroll(ctx, e.url, code, []byte("4921"), false); err != nil || c.Status().ID != "victim@example.com" {
			t.Fatalf("the victim's direct enrolment after the attempt: %v, enrolled as %q", err, c.Status().ID)
		}
	})
	t.Run("forged-unknown-code", func(t *testing.T) {
		// An interceptor that lets the redemption through but answers "unknown_code":
		// the client keeps its seal key, so a retry from a clean network finishes the
		// enrolment with the registrar's stored answer.
		e := newEnv(t)
		code := e.enrolment(t, "victim@example.com", false)
		ca, cert := newCA(t)
		u, _ := url.Parse(e.hs.URL)
		rp := httputil.NewSingleHostReverseProxy(u)
		rp.Transport = e.hs.Client().Transport
		rp.ModifyResponse = func(resp *http.Response) error {
			if resp.Request.URL.Path == "/v1/enrol" && resp.StatusCode == http.StatusOK {
				resp.Body.Close()
				b := []byte(`{"code":"unknown_code","message":"no such enrolment code"}`)
				resp.StatusCode, resp.Body, resp.ContentLength = http.StatusNotFound, io.NopCloser(bytes.NewReader(b)), int64(len(b))
				resp.Header.Del("Content-Length")
			}
			return nil
		}
		p := httptest.NewUnstartedServer(rp)
		p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		p.StartTLS()
		t.Cleanup(p.Close)
		e.roots.AddCert(ca)
		c := e.open(t)
		if err := c.Enroll(ctx, p.URL, code, []byte("4921"), false); err == nil {
			t.Fatal("the forged refusal was not reported")
		}
		if err := c.Enroll(ctx, e.url, code, []byte("4921"), false); err != nil {
			t.Fatalf("the retry from a clean network: %v", err)
		}
		if _, err := c.Login(ctx, e.url, []byte("4921")); err != nil {
			t.Fatalf("the victim's login: %v", err)
		}
	})
}

// TestEnrollOldServer: an auth server that predates permit_key refuses the field; the
// client says so and keeps its keys, and does not retry with one key for both (a
// forged refusal would otherwise make it keep the key of its client shares).
func TestEnrollOldServer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	code := e.enrolment(t, "alice@example.com", false)
	var requests int
	ca, cert := newCA(t)
	p := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"code":"bad_json","message":"field \"permit_key\" is not a known field"}`))
	}))
	p.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	p.StartTLS()
	t.Cleanup(p.Close)
	e.roots.AddCert(ca)
	c := e.open(t)
	err := c.Enroll(ctx, p.URL, code, []byte("4921"), false)
	if err == nil || !strings.Contains(err.Error(), "upgrade the auth server first") || requests != 1 {
		t.Fatalf("enrolment at a server that predates permit_key: %v after %d requests", err, requests)
	}
	if _, err := os.Stat(filepath.Join(e.dir, PendingFile)); err != nil {
		t.Fatalf("the pending keys are gone: %v", err)
	}
	if err := c.Enroll(ctx, e.url, code, []byte("4921"), false); err != nil {
		t.Fatalf("the enrolment at the real server afterwards: %v", err)
	}
}
