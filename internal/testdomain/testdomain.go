// Package testdomain starts a whole domain's trust authorities for tests: n real DTAs
// as HTTP servers on loopback, each with its own file keystore and data directory, the
// registrar's key and the signed trust bundle. Server, client and end-to-end tests
// share it; it is not for production use.
package testdomain

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// A Domain is n running DTAs of one domain.
type Domain struct {
	Name         string
	Bundle       *bundle.Bundle
	BundleFile   []byte // the signed bundle, byte for byte
	Fingerprint  string
	Registrar    ed25519.PrivateKey
	DTAs         []*DTA
	PermitPeriod uint64
	t            testing.TB
}

// A DTA is one running trust authority; Stop and Start restart it on the same address
// and data.
type DTA struct {
	Index uint32
	URL   string
	Dir   string
	Keys  keystore.Keystore
	d     *Domain
	addr  string
	svc   *dta.Service
	srv   *http.Server
	// adjust changes the DTA's configuration at every start (Configure).
	adjust func(*dta.Config)
}

// New starts n DTAs of domain name (additive mode) with the given permit period in
// seconds (0: no permits). Everything stops when the test ends.
func New(t testing.TB, name string, n int, permitPeriod uint64) *Domain {
	t.Helper()
	return newDomain(t, name, n, 0, permitPeriod)
}

// NewThreshold starts n DTAs of domain name in threshold mode: any threshold of them
// make the keys. Their master shares s_i = f(i) come from a trusted dealer in this
// process (pairing.SplitSecret of a random s, which is then forgotten), each written
// over the share dta.Init made, with the bundle's commitment C_i = s_i·P1 to match.
// A dealer knows s: it is for tests only, never for a real domain (polyroot has no
// production way to make threshold shares until its DKG is wired in).
func NewThreshold(t testing.TB, name string, threshold, n int, permitPeriod uint64) *Domain {
	t.Helper()
	return newDomain(t, name, n, threshold, permitPeriod)
}

// newDomain starts n DTAs; threshold 0 means additive mode.
func newDomain(t testing.TB, name string, n, threshold int, permitPeriod uint64) *Domain {
	t.Helper()
	translog.RouteTesseraLogs(slog.New(slog.DiscardHandler))
	ctx := context.Background()
	regPub, regPriv, _ := ed25519.GenerateKey(nil)
	d := &Domain{Name: name, Registrar: regPriv, PermitPeriod: permitPeriod, t: t}
	b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: name, Mode: "additive",
		Threshold: n, PermitPeriod: permitPeriod, RegistrarKey: hex.EncodeToString(regPub)}
	var listeners []net.Listener
	for i := 1; i <= n; i++ {
		dir := t.TempDir()
		ks, err := keystore.OpenFile(filepath.Join(dir, "keys"), []byte("testdomain"), keystore.WithScryptWorkFactor(10))
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, l)
		x := &DTA{Index: uint32(i), URL: "http://" + l.Addr().String(), addr: l.Addr().String(), Dir: dir, Keys: ks, d: d}
		rec, err := dta.Init(ctx, ks, name, x.Index, x.URL)
		if err != nil {
			t.Fatal(err)
		}
		b.DTAs = append(b.DTAs, *rec)
		d.DTAs = append(d.DTAs, x)
	}
	if threshold > 0 {
		b.Mode, b.Threshold = "threshold", threshold
		deal(t, b, d.DTAs, threshold)
	}
	file, fp, err := bundle.Sign(b, regPriv)
	if err != nil {
		t.Fatal(err)
	}
	if d.Bundle, err = bundle.Parse(file); err != nil {
		t.Fatal(err)
	}
	d.BundleFile, d.Fingerprint = file, fp
	for i, x := range d.DTAs {
		x.serve(listeners[i])
	}
	t.Cleanup(func() {
		for _, x := range d.DTAs {
			x.Stop()
		}
	})
	return d
}

// deal is the test-only trusted dealer: it shares a random s among the DTAs with a
// polynomial of degree threshold−1 and replaces each DTA's master share and
// commitment.
func deal(t testing.TB, b *bundle.Bundle, dtas []*DTA, threshold int) {
	s, err := pairing.RandomScalar(nil)
	if err != nil {
		t.Fatal(err)
	}
	shares, err := pairing.SplitSecret(rand.Reader, s, threshold, len(dtas))
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range dtas {
		if err := x.Keys.Put(context.Background(), dta.SecretMasterShare, shares[i].Bytes()); err != nil {
			t.Fatal(err)
		}
		b.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(shares[i]).Bytes())
	}
}

// WriteBundle writes the bundle file into dir and returns its path.
func (d *Domain) WriteBundle(dir string) string {
	p := filepath.Join(dir, "bundle.json")
	if err := os.WriteFile(p, d.BundleFile, 0o644); err != nil {
		d.t.Fatal(err)
	}
	return p
}

func (x *DTA) serve(l net.Listener) {
	t := x.d.t
	cfg := dta.Config{Bundle: x.d.Bundle, Index: x.Index, Keys: x.Keys, DataDir: x.Dir,
		Log: translog.Options{CheckpointInterval: 100 * time.Millisecond}, RatePerSecond: 1e6, RateBurst: 1e6}
	if x.adjust != nil {
		x.adjust(&cfg)
	}
	svc, err := dta.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	x.svc = svc
	x.srv = &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go x.srv.Serve(l)
}

// Stop stops the DTA (its address then refuses connections).
func (x *DTA) Stop() {
	if x.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	x.srv.Shutdown(ctx)
	x.svc.Close(ctx)
	x.srv, x.svc = nil, nil
}

// Start restarts a stopped DTA on its address and data.
func (x *DTA) Start() {
	l, err := net.Listen("tcp", x.addr)
	if err != nil {
		x.d.t.Fatal(err)
	}
	x.serve(l)
}

// Configure restarts x with its configuration changed by adjust, at this start and
// every later one. adjust gets what New uses (the issuance routes' rate limit lifted,
// checkpoints every 100 ms; the log routes' limit is dta's default).
func (x *DTA) Configure(adjust func(*dta.Config)) {
	x.Stop()
	x.adjust = adjust
	x.Start()
}

// AppendDirect appends n entries to the transparency log of each DTA of d directly, not
// through issuance (a log of 100,000 entries takes seconds this way, not minutes): it
// stops the DTAs, appends to their logs at once, and starts them again. leaf returns
// the entry of DTA index at index i of its log. A checkpoint covers them soon after.
func (d *Domain) AppendDirect(n uint64, leaf func(index uint32, i uint64) []byte) {
	d.t.Helper()
	errs := make([]error, len(d.DTAs))
	var wg sync.WaitGroup
	for k, x := range d.DTAs {
		x.Stop()
		wg.Go(func() { errs[k] = x.appendDirect(n, func(i uint64) []byte { return leaf(x.Index, i) }) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		d.t.Fatal(err)
	}
	for _, x := range d.DTAs {
		x.Start()
	}
}

// appendDirect appends n entries to the log of x, which is stopped.
func (x *DTA) appendDirect(n uint64, leaf func(i uint64) []byte) error {
	ctx := context.Background()
	seed, err := x.Keys.Get(ctx, dta.SecretSigningKey)
	if err != nil {
		return err
	}
	rec, _ := x.d.Bundle.Find(x.Index)
	// The DTA's log is DataDir/log (dta.New).
	l, err := translog.Open(ctx, filepath.Join(x.Dir, "log"), rec.LogOrigin, ed25519.NewKeyFromSeed(seed),
		translog.Options{BatchMaxSize: 4096, BatchMaxAge: 50 * time.Millisecond})
	if err != nil {
		return err
	}
	size, err := l.Size(ctx)
	if err != nil {
		return errors.Join(err, l.Close(ctx))
	}
	const chunk = 1 << 14
	leaves := make([][]byte, 0, chunk)
	for i := size; i < size+n; i++ {
		leaves = append(leaves, leaf(i))
		if len(leaves) == chunk || i == size+n-1 {
			if _, err := l.AppendAll(ctx, leaves); err != nil {
				return errors.Join(err, l.Close(ctx))
			}
			leaves = leaves[:0]
		}
	}
	return l.Close(ctx)
}

// SealKey is the hex of an X25519 public key for tests' own tickets for shares (whose
// private half nobody keeps): DTAs refuse tickets for shares without one.
var SealKey = func() string {
	pub, _, err := wire.NewSealKey()
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(pub)
}()

// SealKeyFor returns SealKey for kinds of ticket that need one, "" for revocations.
func SealKeyFor(kind string) string {
	if kind == ticket.KindRevoke {
		return ""
	}
	return SealKey
}

// Reshare simulates a resharing of the domain's master key s among the DTAs: each DTA
// gets a fresh master share of the same s, the DTAs in retire stop and leave the
// domain, and the registrar signs the successor bundle (serial one greater, new
// commitments, the same everything else). The DTAs restart under it; d's Bundle,
// BundleFile and Fingerprint become the successor's. It never learns s: in threshold
// mode it adds g(i) to each share s_i for a random polynomial g of degree t−1 with
// g(0) = 0, in additive mode z_i with Σ z_i = 0. It is a test-only dealer, not the
// resharing protocol (polyroot dta reshare).
func (d *Domain) Reshare(retire ...uint32) {
	d.t.Helper()
	ctx := context.Background()
	next := *d.Bundle
	next.DTAs = nil
	next.Serial = d.Bundle.Serial + 1
	var keep []*DTA
	for _, x := range d.DTAs {
		x.Stop()
		if slices.Contains(retire, x.Index) {
			continue
		}
		keep = append(keep, x)
		rec, _ := d.Bundle.Find(x.Index)
		next.DTAs = append(next.DTAs, *rec)
	}
	if next.Mode == "additive" {
		next.Threshold = len(keep)
	}
	deltas, err := zeroSharing(next.Mode == "threshold", next.Threshold, keep)
	if err != nil {
		d.t.Fatal(err)
	}
	for i, x := range keep {
		raw, err := x.Keys.Get(ctx, dta.SecretMasterShare)
		if err != nil {
			d.t.Fatal(err)
		}
		s, err := pairing.DecodeScalar(raw)
		if err != nil {
			d.t.Fatal(err)
		}
		s.Add(s, deltas[i])
		if err := x.Keys.Put(ctx, dta.SecretMasterShare, s.Bytes()); err != nil {
			d.t.Fatal(err)
		}
		next.DTAs[i].Commitment = hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes())
	}
	file, fp, err := bundle.Sign(&next, d.Registrar)
	if err != nil {
		d.t.Fatal(err)
	}
	if d.Bundle, err = bundle.Parse(file); err != nil {
		d.t.Fatal(err)
	}
	d.BundleFile, d.Fingerprint, d.DTAs = file, fp, keep
	for _, x := range keep {
		x.Start()
	}
}

// zeroSharing returns a sharing of 0 among dtas: g(index) for a random g of degree
// threshold−1 with g(0) = 0, or (additive) random values that sum to 0.
func zeroSharing(threshold bool, t int, dtas []*DTA) ([]*pairing.Scalar, error) {
	out := make([]*pairing.Scalar, len(dtas))
	if !threshold {
		sum := pairing.NewScalar(0)
		for i := range dtas[1:] {
			z, err := pairing.RandomScalar(rand.Reader)
			if err != nil {
				return nil, err
			}
			out[i+1] = z
			sum.Add(sum, z)
		}
		out[0] = new(pairing.Scalar).Neg(sum)
		return out, nil
	}
	coeffs := make([]*pairing.Scalar, t-1)
	for k := range coeffs {
		c, err := pairing.RandomScalar(rand.Reader)
		if err != nil {
			return nil, err
		}
		coeffs[k] = c
	}
	for i, x := range dtas {
		xi := pairing.NewScalar(uint64(x.Index))
		y := pairing.NewScalar(0)
		for k := len(coeffs) - 1; k >= 0; k-- { // Horner, then one more factor x: g(0) = 0
			y.Mul(y, xi).Add(y, coeffs[k])
		}
		out[i] = y.Mul(y, xi)
	}
	return out, nil
}
