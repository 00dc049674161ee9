package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/pairing"
	"github.com/polyroot/polyroot/server"
)

// swapServer serves the auth server's routes through a handler that a test replaces
// (a restart under a new bundle), and can answer GET /v1/bundle with other bytes
// (an attacker's, or a stale replica's).
type swapServer struct {
	h      atomic.Pointer[http.Handler]
	bundle atomic.Pointer[[]byte]
}

func (s *swapServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b := s.bundle.Load(); b != nil && r.URL.Path == "/v1/bundle" {
		w.Header().Set("Content-Type", "application/json")
		w.Write(*b)
		return
	}
	(*s.h.Load()).ServeHTTP(w, r)
}

func (s *swapServer) serveBundle(file []byte) {
	if file == nil {
		s.bundle.Store(nil)
		return
	}
	s.bundle.Store(&file)
}

// successorEnv is an env whose auth server can be restarted under a new bundle on
// the same URL and state.
type successorEnv struct {
	*env
	cfg server.Config
	sw  *swapServer
}

func newSuccessorEnv(t *testing.T, d *testdomain.Domain) *successorEnv {
	t.Helper()
	e := &env{d: d, dir: t.TempDir(), roots: x509.NewCertPool(), dtaHTTP: &http.Client{}}
	sQ, err := server.Provision(context.Background(), d.Bundle, d.Registrar, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, tokenKey, _ := ed25519.GenerateKey(nil)
	se := &successorEnv{env: e, sw: &swapServer{}, cfg: server.Config{Bundle: d.Bundle, BundleFile: d.BundleFile, RegistrarKey: d.Registrar,
		ServerKey: sQ, TokenKey: tokenKey, AdminToken: testAdmin, DataDir: t.TempDir(), RatePerSecond: 1e6, RateBurst: 1e6, Now: e.serverNow}}
	if e.srv, err = server.New(context.Background(), se.cfg); err != nil {
		t.Fatal(err)
	}
	h := e.srv.Handler()
	se.sw.h.Store(&h)
	e.hs = httptest.NewUnstartedServer(se.sw)
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
	return se
}

// restart restarts the auth server under the domain's current bundle, with the same
// sQ, keys and state: what an operator does after the registrar published a
// successor.
func (se *successorEnv) restart(t *testing.T) {
	t.Helper()
	if err := se.srv.Close(); err != nil {
		t.Fatal(err)
	}
	se.cfg.Bundle, se.cfg.BundleFile = se.d.Bundle, se.d.BundleFile
	srv, err := server.New(context.Background(), se.cfg)
	if err != nil {
		t.Fatal(err)
	}
	se.srv = srv
	h := srv.Handler()
	se.sw.h.Store(&h)
}

// clientFiles returns the files of a client directory that an adoption changes.
func clientFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, n := range []string{BundleFile, FingerprintFile, TokenFile, BundlePreviousFile} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[n] = b
	}
	return out
}

func sameFiles(t *testing.T, want, got map[string][]byte) {
	t.Helper()
	for n, w := range want {
		if !bytes.Equal(w, got[n]) {
			t.Errorf("%s changed", n)
		}
	}
}

// signedVariant is the domain's current bundle changed by mutate, signed by key.
func signedVariant(t *testing.T, d *testdomain.Domain, key ed25519.PrivateKey, mutate func(*bundle.Bundle)) []byte {
	t.Helper()
	b := *d.Bundle
	b.DTAs = append([]bundle.DTA(nil), d.Bundle.DTAs...)
	mutate(&b)
	file, _, err := bundle.Sign(&b, key)
	if err != nil {
		t.Fatal(err)
	}
	return file
}

func randomCommitment(t *testing.T) string {
	s, err := pairing.RandomScalar(nil)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes())
}

// TestBundleSuccessor: the DTAs reshare the master key (new shares and commitments,
// the same s) and the registrar publishes a successor bundle; the auth server reloads
// it (SIGHUP) or restarts under it. A client enrolled before adopts it (on its daily check, or when the DTAs'
// shares fail against its pinned commitments), renews its permits and logs in. A
// client bootstrapped on the old bundle adopts it at enrolment. Bundles that are not
// successors (another registrar, another master key, a serial not greater, a
// signature by another key) are refused with ErrBundleNotSuccessor and change no file.
func TestBundleSuccessor(t *testing.T) {
	ctx := context.Background()
	pin := []byte("4921")
	for _, tc := range []struct {
		name   string
		domain func(t *testing.T) *testdomain.Domain
		retire []uint32
		daily  bool // adopted on the daily check (else: on the failed DLEQ proofs)
		reload bool // the auth server reloads the bundle (SIGHUP) instead of restarting
	}{
		{"additive/daily-check/server-reload", func(t *testing.T) *testdomain.Domain {
			return testdomain.New(t, testDomainName, 3, testPeriod)
		}, nil, true, true},
		{"threshold/dleq-failure/one-retired/server-restart", func(t *testing.T) *testdomain.Domain {
			return testdomain.NewThreshold(t, testDomainName, 2, 4, testPeriod)
		}, []uint32{4}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.domain(t)
			se := newSuccessorEnv(t, d)
			old := *d.Bundle
			oldFile, oldFP := d.BundleFile, d.Fingerprint
			// A second directory bootstrapped on the old bundle, enrolled after.
			late := t.TempDir()
			if err := Bootstrap(ctx, late, d.WriteBundle(t.TempDir()), d.Fingerprint); err != nil {
				t.Fatal(err)
			}
			se.enroll(t, "alice@example.com", pin)

			d.Reshare(tc.retire...)
			if tc.reload {
				if err := se.srv.ReloadBundle(d.BundleFile); err != nil {
					t.Fatal(err)
				}
			} else {
				se.restart(t)
			}
			if d.Bundle.Serial != 1 || d.Fingerprint == oldFP {
				t.Fatalf("successor serial %d", d.Bundle.Serial)
			}
			se.setServerClock(tenPeriods)
			c := se.open(t, WithNow(later))
			if !tc.daily {
				// The daily check was just done: only the failed proofs make the client look.
				if err := os.WriteFile(filepath.Join(se.dir, BundleCheckFile), []byte(later().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// Bundles the client must refuse, served in place of the successor.
			_, otherReg, _ := ed25519.GenerateKey(nil)
			fails := map[string][]byte{
				"fail/other-registrar": signedVariant(t, d, otherReg, func(b *bundle.Bundle) {
					b.RegistrarKey = hex.EncodeToString(otherReg.Public().(ed25519.PublicKey))
				}),
				"fail/signed-by-another-key": func() []byte {
					// Names the pinned registrar, signed by another key.
					var sf struct {
						Bundle    json.RawMessage `json:"bundle"`
						Signature string          `json:"signature"`
					}
					if err := json.Unmarshal(signedVariant(t, d, d.Registrar, func(*bundle.Bundle) {}), &sf); err != nil {
						t.Fatal(err)
					}
					var compact bytes.Buffer
					json.Compact(&compact, sf.Bundle)
					sf.Signature = hex.EncodeToString(ed25519.Sign(otherReg, compact.Bytes()))
					f, _ := json.MarshalIndent(sf, "", "  ")
					return f
				}(),
				"fail/other-key": signedVariant(t, d, d.Registrar, func(b *bundle.Bundle) {
					for i := range b.DTAs {
						b.DTAs[i].Commitment = randomCommitment(t)
					}
					if b.Mode == "threshold" && b.Threshold < len(b.DTAs) {
						b.Threshold = len(b.DTAs) // random commitments lie on no lower polynomial
					}
				}),
				"fail/serial-equal": signedVariant(t, d, d.Registrar, func(b *bundle.Bundle) {
					*b = old
					b.MinPINLength = 6
				}),
				// The successor's content without a greater serial (a registrar that
				// forgot it). A lower serial: the rollback below.
				"fail/serial-not-greater": signedVariant(t, d, d.Registrar, func(b *bundle.Bundle) { b.Serial = 0 }),
				// A true successor, but one DTA would send its shares in the clear.
				"fail/plain-http-dta": signedVariant(t, d, d.Registrar, func(b *bundle.Bundle) { b.DTAs[0].URL = "http://dta.example.net:8441" }),
			}
			before := clientFiles(t, se.dir)
			for name, file := range fails {
				t.Run(name, func(t *testing.T) {
					se.sw.serveBundle(file)
					if tc.daily {
						os.Remove(filepath.Join(se.dir, BundleCheckFile))
					}
					err := c.RenewPermits(ctx, se.url, pin, 2)
					why := bundle.ErrNotSuccessor
					if name == "fail/plain-http-dta" {
						why = bundle.ErrPlainHTTP
					}
					if !errors.Is(err, ErrBundleNotSuccessor) || !errors.Is(err, why) {
						t.Fatalf("got %v", err)
					}
					t.Logf("refused: %v", err)
					sameFiles(t, before, clientFiles(t, se.dir))
					if c.Fingerprint() != oldFP {
						t.Fatal("the client's pinned fingerprint changed")
					}
				})
			}

			// The real successor.
			se.sw.serveBundle(nil)
			if tc.daily {
				os.Remove(filepath.Join(se.dir, BundleCheckFile))
			}
			if err := c.RenewPermits(ctx, se.url, pin, 2); err != nil {
				t.Fatal(err)
			}
			if c.Fingerprint() != d.Fingerprint {
				t.Fatalf("pinned %s, want the successor %s", c.Fingerprint(), d.Fingerprint)
			}
			after := clientFiles(t, se.dir)
			if !bytes.Equal(after[BundleFile], d.BundleFile) || string(after[FingerprintFile]) != d.Fingerprint+"\n" ||
				!bytes.Contains(after[TokenFile], []byte(`"bundle_fingerprint": "`+d.Fingerprint+`"`)) || after[BundlePreviousFile] != nil {
				t.Fatalf("client files after adoption:\n%s\n%s", after[FingerprintFile], after[TokenFile])
			}
			// A fresh Open (the CLI's next command) logs in with the renewed permits.
			for _, cl := range []*Client{c, se.open(t, WithNow(later))} {
				s, err := cl.Login(ctx, se.url, pin)
				if err != nil || s.ID != "alice@example.com" {
					t.Fatalf("login after the resharing: %v", err)
				}
			}

			// Rollback: the old bundle (serial 0, registrar-signed), as a replica that
			// has not loaded the successor serves it, is ignored: the client keeps the
			// successor and its permits come.
			t.Run("ok/older-bundle-ignored", func(t *testing.T) {
				se.sw.serveBundle(oldFile)
				os.Remove(filepath.Join(se.dir, BundleCheckFile))
				before := clientFiles(t, se.dir)
				if err := c.RenewPermits(ctx, se.url, pin, 2); err != nil {
					t.Fatalf("got %v", err)
				}
				after := clientFiles(t, se.dir)
				if c.Fingerprint() != d.Fingerprint || !bytes.Equal(before[BundleFile], after[BundleFile]) ||
					!bytes.Equal(before[FingerprintFile], after[FingerprintFile]) {
					t.Fatal("the older bundle replaced the successor")
				}
				se.sw.serveBundle(nil)
			})

			// A directory bootstrapped on the old bundle enrols under the successor.
			lc, err := Open(late, WithServerClient(se.serverHTTP()), WithDTAClient(se.dtaHTTP), WithNow(later))
			if err != nil {
				t.Fatal(err)
			}
			if err := lc.Enroll(ctx, se.url, se.enrolment(t, "bob@example.com", false), pin, false); err != nil {
				t.Fatal(err)
			}
			if lc.Fingerprint() != d.Fingerprint {
				t.Fatal("the late client did not adopt the successor")
			}
			if _, err := lc.Login(ctx, se.url, pin); err != nil {
				t.Fatalf("login of the late client: %v", err)
			}
		})
	}
}

// TestBundleSuccessorRecovery: an adoption interrupted after bundle.json was replaced
// (the journal holds the previous bundle) is finished by Open; a journal whose bundle
// is not followed by a successor is refused.
func TestBundleSuccessorRecovery(t *testing.T) {
	d := testdomain.New(t, testDomainName, 2, testPeriod)
	se := newSuccessorEnv(t, d)
	se.enroll(t, "alice@example.com", []byte("4921"))
	oldFile := d.BundleFile
	d.Reshare()
	// The crash: journal written, bundle.json replaced; bundle.sha256 and token.json not.
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(se.dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(BundlePreviousFile, oldFile)
	write(BundleFile, d.BundleFile)
	c, err := Open(se.dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Fingerprint() != d.Fingerprint || !c.Status().Enrolled {
		t.Fatalf("after recovery: %s %+v", c.Fingerprint(), c.Status())
	}
	if _, err := os.Stat(filepath.Join(se.dir, BundlePreviousFile)); !os.IsNotExist(err) {
		t.Fatal("the journal is still there")
	}
	t.Run("ok/crash-after-fingerprint", func(t *testing.T) {
		// The next successor: journal, bundle.json and bundle.sha256 written, the token
		// file still names the previous bundle.
		prevFile, prevFP := d.BundleFile, d.Fingerprint
		d.Reshare()
		tok, err := os.ReadFile(filepath.Join(se.dir, TokenFile))
		if err != nil {
			t.Fatal(err)
		}
		write(BundlePreviousFile, prevFile)
		write(BundleFile, d.BundleFile)
		write(FingerprintFile, []byte(d.Fingerprint+"\n"))
		if !bytes.Contains(tok, []byte(prevFP)) {
			t.Fatal("the token does not name the previous bundle")
		}
		if err := os.WriteFile(filepath.Join(se.dir, TokenFile), tok, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Open(se.dir)
		if err != nil {
			t.Fatal(err)
		}
		tok, _ = os.ReadFile(filepath.Join(se.dir, TokenFile))
		if c.Fingerprint() != d.Fingerprint || !c.Status().Enrolled || !bytes.Contains(tok, []byte(d.Fingerprint)) {
			t.Fatalf("after recovery: %s %+v", c.Fingerprint(), c.Status())
		}
	})
	t.Run("fail/not-a-successor", func(t *testing.T) {
		// A journal and a bundle.json that is the old one again: no successor.
		cur := clientFiles(t, se.dir)
		write(BundlePreviousFile, d.BundleFile)
		write(BundleFile, oldFile)
		if _, err := Open(se.dir); err == nil {
			t.Fatal("opened a directory whose bundle.json went back to the old bundle")
		}
		write(BundleFile, cur[BundleFile])
		os.Remove(filepath.Join(se.dir, BundlePreviousFile))
		if _, err := Open(se.dir); err != nil {
			t.Fatal(err)
		}
	})
}

// TestEnrollAdoptsSuccessorMidway: in a threshold domain, a DTA whose client share
// fails its proof while t others answered validly makes Enroll adopt the successor
// that the auth server serves; the token must be saved under the bundle pinned then,
// or the directory would not open again (its code used up).
func TestEnrollAdoptsSuccessorMidway(t *testing.T) {
	d := testdomain.NewThreshold(t, testDomainName, 2, 3, testPeriod)
	se := newSuccessorEnv(t, d)
	se.sw.serveBundle(signedVariant(t, d, d.Registrar, func(b *bundle.Bundle) { b.Serial++; b.MinPINLength = 4 }))
	se.dtaHTTP = &http.Client{}
	routeDTAs(t, se.dtaHTTP, map[string]http.Handler{ // DTA 1's wrong share comes first
		d.DTAs[0].URL: wrongShareDTA(t, d, d.DTAs[0].URL, d.DTAs[0].Index),
		d.DTAs[1].URL: slowDTA(d.DTAs[1].URL, 300*time.Millisecond),
		d.DTAs[2].URL: slowDTA(d.DTAs[2].URL, 300*time.Millisecond),
	})
	var f faults
	c := se.open(t, WithDTAFaults(f.add))
	if err := c.Enroll(context.Background(), se.url, se.enrolment(t, "alice@example.com", false), []byte("4921"), false); err != nil {
		t.Fatalf("enroll: %v", err)
	}
	if len(f.get()) == 0 {
		t.Fatal("no DTA fault reported: the successor was not adopted midway")
	}
	again, err := Open(se.dir)
	if err != nil {
		t.Fatalf("the enrolled directory does not open: %v", err)
	}
	if b, _ := again.pinned(); b.Serial != d.Bundle.Serial+1 {
		t.Fatalf("pinned serial %d, want the successor's %d", b.Serial, d.Bundle.Serial+1)
	}
}

// TestBootstrapFingerprint: a fingerprint that is not 64 hex digits is refused before
// anything is fetched, and a mismatch does not print the served bundle's fingerprint,
// which a user would copy back and so pin whatever was served.
func TestBootstrapFingerprint(t *testing.T) {
	d := testdomain.New(t, testDomainName, 3, testPeriod)
	file := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(file, d.BundleFile, 0o600); err != nil {
		t.Fatal(err)
	}
	actual := bundle.Fingerprint(d.BundleFile)
	if err := Bootstrap(context.Background(), t.TempDir(), file, actual[:6]); err == nil || !strings.Contains(err.Error(), "64 hex digits") {
		t.Fatalf("a truncated fingerprint: %v", err)
	}
	wrong := strings.Repeat("0", 64)
	err := Bootstrap(context.Background(), t.TempDir(), file, wrong)
	if !errors.Is(err, ErrBundleFingerprint) || strings.Contains(err.Error(), actual[:8]) {
		t.Fatalf("a wrong fingerprint: %v", err)
	}
}
