package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

var wrongPIN = []byte("0000")

// failureServer is a real auth server (its state database in one temporary directory)
// with an identity for each way a login fails, and clients that can answer its
// challenges: their tokens are made from the DTAs' master shares directly, as the
// shares the DTAs would issue combine to.
type failureServer struct {
	srv     *server.Server
	handler http.Handler
	minter

	wrong, revoked, blocked, unknown *pairing.Client
}

func newFailureServer(b *testing.B) *failureServer {
	b.Helper()
	fs := newBenchServer(b, nil)
	fs.wrong, fs.revoked, fs.blocked = fs.enrol(b, "wrong"), fs.enrol(b, "revoked"), fs.enrol(b, "blocked")
	var ghost pairing.IDHash
	rand.Read(ghost[:])
	fs.unknown = fs.client(ghost)
	fs.admin(b, "revoke", "revoked")
	for _, body := range fs.prepare(b, fs.blocked, wrongPIN, 3) {
		if rec := fs.post(b, "/v1/login/finish", body); rec.Code != http.StatusUnauthorized {
			b.Fatalf("blocking: %d %s", rec.Code, rec.Body)
		}
	}
	return fs
}

// newBenchServer starts a real auth server in process, its configuration changed by
// mod, and keeps the DTAs' master shares to make clients.
func newBenchServer(b *testing.B, mod func(*server.Config)) *failureServer {
	b.Helper()
	ctx := context.Background()
	d := testdomain.New(b, "failure.example.com", 3, 0)
	sQ, err := server.Provision(ctx, d.Bundle, d.Registrar, http.DefaultClient)
	if err != nil {
		b.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	cfg := server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar,
		ServerKey: sQ, TokenKey: tokenKey, AdminToken: adminToken, DataDir: benchDataDir(b), RatePerSecond: 1e9, RateBurst: 1 << 30}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	return &failureServer{srv: srv, handler: srv.Handler(), minter: newMinter(b, d)}
}

// A minter makes clients of a domain whose tokens come from its DTAs' master shares
// directly, as the shares the DTAs would issue combine to: no DTA round trips.
type minter struct {
	domain  pairing.Domain
	masters []*pairing.Scalar
}

// newMinter reads the master shares from the keystores of d's DTAs.
func newMinter(b *testing.B, d *testdomain.Domain) minter {
	b.Helper()
	m := minter{domain: pairing.Domain{Name: d.Name}}
	for _, x := range d.DTAs {
		raw, err := x.Keys.Get(context.Background(), dta.SecretMasterShare)
		if err != nil {
			b.Fatal(err)
		}
		s, err := pairing.DecodeScalar(raw)
		if err != nil {
			b.Fatal(err)
		}
		m.masters = append(m.masters, s)
	}
	return m
}

// benchDataDir is the state database's directory: in $POLYROOT_BENCH_DATA_DIR if set,
// else on /dev/shm if the system has it, else in the usual temporary directory. A
// memory file system keeps the code path (every failure's commit still calls fsync)
// but not the disk's latency, which on a shared or virtual disk varies by milliseconds
// from one sync to the next and would drown the comparison.
func benchDataDir(b testing.TB) string {
	b.Helper()
	parent := os.Getenv("POLYROOT_BENCH_DATA_DIR")
	if parent == "" {
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			parent = "/dev/shm"
		}
	}
	if parent == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(parent, "polyroot-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// post sends a JSON body through the server's HTTP handler.
func (fs *failureServer) post(b *testing.B, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	fs.handler.ServeHTTP(rec, req)
	return rec
}

// admin runs a registrar action (revoke, unblock) on an app-level ID.
func (fs *failureServer) admin(b *testing.B, action, id string) {
	body, _ := json.Marshal(wire.IdentityRequest{ID: id})
	if rec := fs.post(b, "/v1/admin/"+action, body); rec.Code != http.StatusOK {
		b.Fatalf("%s %s: %d %s", action, id, rec.Code, rec.Body)
	}
}

// enrol creates an enrolment and returns a client of its idhash with PIN testPIN.
func (fs *failureServer) enrol(b *testing.B, id string) *pairing.Client {
	body, _ := json.Marshal(wire.EnrolmentRequest{ID: id})
	rec := fs.post(b, "/v1/admin/enrolments", body)
	return fs.enrolled(b, rec.Code, rec.Body.Bytes())
}

// enrolled returns a client, with PIN testPIN, of the enrolment that the registrar's
// answer (status and body) reports created.
func (m minter) enrolled(b *testing.B, status int, body []byte) *pairing.Client {
	var created wire.EnrolmentCreated
	if err := json.Unmarshal(body, &created); err != nil || status != http.StatusOK {
		b.Fatalf("enrolment: %d %s", status, body)
	}
	var idh pairing.IDHash
	if raw, err := hex.DecodeString(created.IDHash); err != nil || len(raw) != len(idh) {
		b.Fatalf("idhash %q", created.IDHash)
	} else {
		copy(idh[:], raw)
	}
	return m.client(idh)
}

// client returns a client of idhash id with PIN testPIN: its token is s·A − π·A, with
// s·A the sum of the master shares times A.
func (m minter) client(id pairing.IDHash) *pairing.Client {
	a := pairing.IdentityPoint(id)
	var sA *pairing.G1
	for _, s := range m.masters {
		if p := a.Mul(s); sA == nil {
			sA = p
		} else {
			sA = sA.Add(p)
		}
	}
	return &pairing.Client{Domain: m.domain, IDHash: id, Token: pairing.ExtractPIN(m.domain.Name, id, sA, testPIN)}
}

// prepare runs n logins of c with pin up to pass 2: pass 1 through the server's
// handler, the client's answer to each challenge; it returns the pass-2 request bodies.
func (fs *failureServer) prepare(b *testing.B, c *pairing.Client, pin []byte, n int) [][]byte {
	bodies := make([][]byte, 0, n)
	for range n {
		cs, p1, err := c.Start(nil, pin)
		if err != nil {
			b.Fatal(err)
		}
		b1, _ := p1.MarshalBinary()
		body, _ := json.Marshal(wire.StartRequest{Pass1: b1})
		rec := fs.post(b, "/v1/login/start", body)
		var sr wire.StartResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &sr); err != nil || rec.Code != http.StatusOK {
			b.Fatalf("pass 1: %d %s", rec.Code, rec.Body)
		}
		var ch pairing.Challenge
		if err := ch.UnmarshalBinary(sr.Challenge); err != nil {
			b.Fatal(err)
		}
		p2, err := cs.Respond(&ch, nil)
		if err != nil {
			b.Fatal(err)
		}
		b2, _ := p2.MarshalBinary()
		body, _ = json.Marshal(wire.FinishRequest{Pass2: b2})
		bodies = append(bodies, body)
	}
	return bodies
}

// BenchmarkLoginFailure is the auth server's whole handling of the pass 2 of a login
// that fails, through its HTTP handler: decoding, the check of pass 2, the count of
// the failure and its synced write to the state database, and the 401 answer; for a
// wrong PIN, an unknown idhash, a revoked identity, and a blocked identity with its
// right PIN and with a wrong one. Every failure must cost the same (SECURITY.md), so
// the sub-benchmarks' ns/op must agree within 5% in one run (the medians of its -count
// runs).
//
// The logins are prepared (pass 1 through the handler, the client's answer) with the
// timer stopped, a few at a time, and their garbage collected before the clock runs; the wrong-PIN identity is unblocked by the registrar
// before it would be blocked, also with the timer stopped, so that its failures stay
// failures of the check itself. All sub-benchmarks use the one server and database.
func BenchmarkLoginFailure(b *testing.B) {
	fs := newFailureServer(b)
	kinds := []struct {
		name    string
		c       *pairing.Client
		pin     []byte
		unblock string // the app-level ID to unblock before each chunk
	}{
		{"wrong-pin", fs.wrong, wrongPIN, "wrong"},
		{"unknown", fs.unknown, testPIN, ""},
		{"revoked", fs.revoked, testPIN, ""},
		{"blocked-right-pin", fs.blocked, testPIN, ""},
		{"blocked-wrong-pin", fs.blocked, wrongPIN, ""},
	}
	const chunk = 3 // the default MaxFailures: the wrong-PIN identity never gets blocked
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			b.StopTimer()
			for done := 0; done < b.N; {
				n := min(chunk, b.N-done)
				if k.unblock != "" {
					fs.admin(b, "unblock", k.unblock)
				}
				bodies := fs.prepare(b, k.c, k.pin, n)
				runtime.GC() // the preparation's garbage is not collected on the clock
				b.StartTimer()
				for _, body := range bodies {
					req := httptest.NewRequest(http.MethodPost, "/v1/login/finish", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					rec := httptest.NewRecorder()
					fs.handler.ServeHTTP(rec, req)
					if rec.Code != http.StatusUnauthorized {
						b.Fatalf("%s: %d %s", k.name, rec.Code, rec.Body)
					}
				}
				b.StopTimer()
				done += n
			}
		})
	}
}
