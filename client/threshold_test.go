package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// faults collects what WithDTAFaults reports.
type faults struct {
	mu   sync.Mutex
	errs []error
}

func (f *faults) add(err error) { f.mu.Lock(); f.errs = append(f.errs, err); f.mu.Unlock() }

func (f *faults) get() []error { f.mu.Lock(); defer f.mu.Unlock(); return slices.Clone(f.errs) }

// routeDTAs sends hc's requests to the DTAs at the given URLs to the handlers instead
// (nil: to a closed port, as if the DTA were down for hc's user only).
func routeDTAs(t *testing.T, hc *http.Client, routes map[string]http.Handler) {
	t.Helper()
	to := map[string]string{}
	for dtaURL, h := range routes {
		from, _ := url.Parse(dtaURL)
		if h == nil {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			to[from.Host] = l.Addr().String()
			l.Close()
			continue
		}
		p := httptest.NewServer(h)
		t.Cleanup(p.Close)
		u, _ := url.Parse(p.URL)
		to[from.Host] = u.Host
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if a, ok := to[addr]; ok {
			addr = a
		}
		return d.DialContext(ctx, network, addr)
	}
	hc.Transport = tr
}

// wrongShareDTA is a dishonest DTA in front of the real one at dtaURL: it answers
// client shares with a wrong share and proof, sealed properly to the client's key.
func wrongShareDTA(t *testing.T, d *testdomain.Domain, dtaURL string, index uint32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(dtaURL+r.URL.Path, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if r.URL.Path == "/v1/shares/client" && resp.StatusCode == http.StatusOK {
			var req wire.DTARequest
			var ans wire.DTAResponse
			json.Unmarshal(body, &req)
			json.Unmarshal(out, &ans)
			tk, err := ticket.Verify(req.Ticket, d.Bundle.RegistrarPublicKey(), d.Name, ticket.KindClient, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			var id pairing.IDHash
			hex.Decode(id[:], []byte(tk.IDHash))
			rec, _ := d.Bundle.Find(index)
			commitment, _ := rec.CommitmentPoint()
			wrong, _ := pairing.RandomScalar(nil)
			share, proof, err := pairing.IssueShare(nil, wrong, commitment, pairing.IdentityPoint(id), pairing.ShareContext(d.Name, index, "client", 0))
			if err != nil {
				t.Error(err)
				return
			}
			key, _ := hex.DecodeString(tk.SealKey)
			ans.Shares[0].Sealed, _ = wire.Seal(key, &wire.SealContext{Domain: d.Name, DTA: index, Kind: "client",
				TicketSHA256: sha256.Sum256([]byte(req.Ticket))}, append(share.Bytes(), proof.Bytes()...))
			out, _ = json.Marshal(ans)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	})
}

// slowDTA forwards to the real DTA at dtaURL after a delay.
func slowDTA(dtaURL string, delay time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		resp, err := http.Post(dtaURL+r.URL.Path, "application/json", r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	})
}

// failedDTAs returns the indices that err names as bad shares and as unreachable.
func failedDTAs(err error) (bad, down []uint32) {
	var visit func(error)
	visit = func(err error) {
		var bs *BadShareError
		var ue *DTAUnreachableError
		switch {
		case errors.As(err, &bs):
			bad = append(bad, bs.Indices...)
		case errors.As(err, &ue):
			down = append(down, ue.Index)
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				visit(e)
			}
		} else if u := errors.Unwrap(err); u != nil {
			if _, ok := err.(*QuorumError); ok {
				visit(u)
			}
		}
	}
	visit(err)
	slices.Sort(bad)
	slices.Sort(down)
	return slices.Compact(bad), slices.Compact(down)
}

// TestThreshold runs a 3-of-5 domain with real DTAs over HTTP: the auth server is
// provisioned, and a client enrols (client key and three permit slots), logs in and
// refreshes permits, with two DTAs stopped; a DTA answering a wrong share is named
// while the three others suffice; with three DTAs down enrolment and provisioning fail
// naming them, nothing is stored, and the same code completes once they are back; the
// shares of two colluding DTAs make a server key that fails every login.
func TestThreshold(t *testing.T) {
	ctx := context.Background()
	pin := []byte("2468")
	d := testdomain.NewThreshold(t, testDomainName, 3, 5, testPeriod)
	d.DTAs[3].Stop() // DTAs 4 and 5
	d.DTAs[4].Stop()
	e := newEnvFor(t, d) // provisions sQ from DTAs 1 to 3
	enrolIn := func(t *testing.T, dir, id string, opts ...Option) (*Client, error) {
		t.Helper()
		if err := Bootstrap(ctx, dir, d.WriteBundle(t.TempDir()), d.Fingerprint); err != nil {
			t.Fatal(err)
		}
		c, err := Open(dir, append([]Option{WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP), WithDTATimeout(2 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return c, c.Enroll(ctx, e.url, e.enrolment(t, id, false), pin, false)
	}

	t.Run("ok/two-dtas-down", func(t *testing.T) {
		var f faults
		c, err := enrolIn(t, t.TempDir(), "alice@example.com", WithDTAFaults(f.add))
		if err != nil {
			t.Fatal(err)
		}
		if bad, down := failedDTAs(errors.Join(f.get()...)); len(bad) != 0 || !slices.Equal(down, []uint32{4, 5}) {
			t.Fatalf("faults %v: bad %v, down %v", f.get(), bad, down)
		}
		if st := c.Status(); len(st.Permits) != 3 || !st.CurrentPermit {
			t.Fatalf("status %+v", st)
		}
		s, err := c.Login(ctx, e.url, pin)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RefreshPermits(ctx, e.url, s.AccessToken, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, e.url, pin); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, e.url, []byte("0000")); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("wrong PIN: %v", err)
		}
	})

	t.Run("ok/wrong-share-named", func(t *testing.T) {
		d.DTAs[3].Start() // DTA 4 back (answering late); DTA 5 stays down
		t.Cleanup(d.DTAs[3].Stop)
		routeDTAs(t, e.dtaHTTP, map[string]http.Handler{
			d.DTAs[1].URL: wrongShareDTA(t, d, d.DTAs[1].URL, 2),
			d.DTAs[3].URL: slowDTA(d.DTAs[3].URL, 300*time.Millisecond),
		})
		t.Cleanup(func() { e.dtaHTTP.Transport = nil })
		var f faults
		c, err := enrolIn(t, t.TempDir(), "bob@example.com", WithDTAFaults(f.add))
		if err != nil {
			t.Fatal(err)
		}
		bad, down := failedDTAs(errors.Join(f.get()...))
		var se *pairing.ShareError
		if !slices.Equal(bad, []uint32{2}) || !slices.Equal(down, []uint32{5}) || !errors.As(errors.Join(f.get()...), &se) {
			t.Fatalf("faults %v: bad %v, down %v", f.get(), bad, down)
		}
		if _, err := c.Login(ctx, e.url, pin); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("fail/three-dtas-down", func(t *testing.T) {
		// DTAs 4 and 5 are stopped; DTA 3 is down for this client (the auth server's
		// probe still sees 3 DTAs up, so it hands out tickets).
		routeDTAs(t, e.dtaHTTP, map[string]http.Handler{d.DTAs[2].URL: nil})
		t.Cleanup(func() { e.dtaHTTP.Transport = nil })
		dir := t.TempDir()
		if err := Bootstrap(ctx, dir, d.WriteBundle(t.TempDir()), d.Fingerprint); err != nil {
			t.Fatal(err)
		}
		c, err := Open(dir, WithServerClient(e.serverHTTP()), WithDTAClient(e.dtaHTTP), WithDTATimeout(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		code := e.enrolment(t, "carol@example.com", false)
		err = c.Enroll(ctx, e.url, code, pin, false)
		var qe *QuorumError
		if !errors.As(err, &qe) || qe.Valid != 2 || qe.Need != 3 || qe.N != 5 || !slices.Equal(qe.Failed, []uint32{3, 4, 5}) {
			t.Fatalf("got %v", err)
		}
		if _, down := failedDTAs(err); !slices.Equal(down, []uint32{3, 4, 5}) {
			t.Fatalf("unreachable %v in %v", down, err)
		}
		if _, err := os.Stat(filepath.Join(dir, TokenFile)); !os.IsNotExist(err) {
			t.Fatal("a token was stored")
		}
		_, err = server.Provision(ctx, d.Bundle, d.Registrar, e.dtaHTTP)
		var de *server.DTAError
		if !errors.As(err, &de) || de.Valid != 2 || de.Need != 3 || !slices.Equal(mapsKeys(de.Failed), []uint32{3, 4, 5}) {
			t.Fatalf("provision: %v", err)
		}
		// Back up: the same code completes the pending enrolment.
		e.dtaHTTP.Transport = nil
		d.DTAs[3].Start()
		t.Cleanup(d.DTAs[3].Stop)
		if err := c.Enroll(ctx, e.url, code, pin, false); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, e.url, pin); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("fail/two-colluding-dtas", func(t *testing.T) {
		c, err := enrolIn(t, t.TempDir(), "dave@example.com")
		if err != nil {
			t.Fatal(err)
		}
		// DTAs 1 and 2 pool their server key shares as if two sufficed.
		two := *d.Bundle
		two.Threshold, two.DTAs = 2, d.Bundle.DTAs[:2]
		sQ2, err := server.Provision(ctx, &two, d.Registrar, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The same server state, with that key.
		var snap bytes.Buffer
		if err := e.srv.Backup(&snap); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "server.db"), snap.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Login(ctx, newServerWithKey(t, e, dir, sQ2), pin); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("login with two DTAs' server key: %v", err)
		}
		if _, err := c.Login(ctx, e.url, pin); err != nil {
			t.Fatal(err)
		}
	})
}

func mapsKeys[V any](m map[uint32]V) []uint32 {
	var out []uint32
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// newServerWithKey starts another auth server of e's domain on the state in dir with
// server key sQ, served over TLS with a certificate e's clients trust, and returns its
// URL.
func newServerWithKey(t *testing.T, e *env, dir string, sQ *pairing.G2) string {
	t.Helper()
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	srv, err := server.New(context.Background(), server.Config{Bundle: e.d.Bundle, BundleFile: e.d.BundleFile,
		RegistrarKey: e.d.Registrar, ServerKey: sQ, TokenKey: tokenKey, AdminToken: testAdmin, DataDir: dir,
		RatePerSecond: 1e6, RateBurst: 1e6})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.EnableHTTP2 = true
	hs.StartTLS()
	t.Cleanup(func() {
		hs.Close()
		srv.Close()
	})
	e.roots.AddCert(hs.Certificate())
	return hs.URL
}
