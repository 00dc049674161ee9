package dta

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/translog"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

const testDomain = "api.example.com"

// domain is n DTAs of one domain, each a real HTTP server on loopback, with file
// keystores and their own data directories.
type domain struct {
	t         testing.TB
	bundle    *bundle.Bundle
	registrar ed25519.PrivateKey
	dtas      []*node
	now       time.Time
	logger    *slog.Logger // the DTAs' logger; nil discards
}

type node struct {
	index    uint32
	dir      string
	keys     keystore.Keystore
	listener net.Listener
	url      string
	svc      *Service
	srv      *http.Server
	rate     float64
}

func newDomain(t testing.TB, n int, permitPeriod uint64) *domain {
	t.Helper()
	ctx := context.Background()
	regPub, regPriv, _ := ed25519.GenerateKey(nil)
	d := &domain{t: t, registrar: regPriv, now: time.Now()}
	b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: testDomain, Mode: "additive",
		Threshold: n, PermitPeriod: permitPeriod, RegistrarKey: hex.EncodeToString(regPub)}
	for i := 1; i <= n; i++ {
		dir := t.TempDir()
		ks, err := keystore.OpenFile(filepath.Join(dir, "keys"), []byte("test passphrase"), keystore.WithScryptWorkFactor(10))
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{index: uint32(i), dir: dir, keys: ks, listener: l, url: "http://" + l.Addr().String()}
		rec, err := Init(ctx, ks, testDomain, nd.index, nd.url)
		if err != nil {
			t.Fatal(err)
		}
		b.DTAs = append(b.DTAs, *rec)
		d.dtas = append(d.dtas, nd)
	}
	if n == 1 {
		// A bundle names at least two DTAs; the second of a one-DTA test never runs.
		b.DTAs, b.Threshold = append(b.DTAs, absentPeer(t, 2)), 2
	}
	file, _, err := bundle.Sign(b, regPriv)
	if err != nil {
		t.Fatal(err)
	}
	if d.bundle, err = bundle.Parse(file); err != nil {
		t.Fatal(err)
	}
	for _, nd := range d.dtas {
		d.start(nd)
	}
	t.Cleanup(func() {
		for _, nd := range d.dtas {
			d.stop(nd)
		}
	})
	return d
}

// absentPeer is the record of a DTA that a test names in its bundle but never starts.
func absentPeer(t testing.TB, index uint32) bundle.DTA {
	t.Helper()
	ks, err := keystore.OpenFile(filepath.Join(t.TempDir(), "keys"), []byte("test passphrase"), keystore.WithScryptWorkFactor(10))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Init(context.Background(), ks, testDomain, index, "https://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	return *rec
}

// start runs the DTA on its listener (a new one on the same address after a stop),
// with its configuration changed by mods.
func (d *domain) start(nd *node, mods ...func(*Config)) {
	d.t.Helper()
	if nd.listener == nil {
		l, err := net.Listen("tcp", nd.url[len("http://"):])
		if err != nil {
			d.t.Fatal(err)
		}
		nd.listener = l
	}
	cfg := Config{Bundle: d.bundle, Index: nd.index, Keys: nd.keys, DataDir: nd.dir,
		Log: logOptions, RatePerSecond: nd.rate, RateBurst: int(nd.rate) + 1, Logger: d.logger}
	for _, m := range mods {
		m(&cfg)
	}
	svc, err := New(context.Background(), cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	nd.svc = svc
	nd.srv = &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go nd.srv.Serve(nd.listener)
}

func (d *domain) stop(nd *node) {
	if nd.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nd.srv.Shutdown(ctx)
	nd.listener.Close() // Shutdown misses a listener that Serve has not taken yet
	nd.svc.Close(ctx)
	nd.srv, nd.svc, nd.listener = nil, nil, nil
}

// The seal key every test ticket for shares names, as a client's or server's would.
var testSealPub, testSealPriv = func() ([]byte, []byte) {
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		panic(err)
	}
	return pub, priv
}()

// ticket signs a ticket of kind for id with the registrar key; tickets for shares name
// testSealPub.
func (d *domain) ticket(kind string, id pairing.IDHash, mutate ...func(*ticket.Ticket)) string {
	d.t.Helper()
	tk := ticket.Ticket{Domain: testDomain, Kind: kind, NotAfter: d.now.Add(time.Hour)}
	if kind != ticket.KindServer {
		tk.IDHash = hex.EncodeToString(id[:])
	}
	if kind != ticket.KindRevoke {
		tk.SealKey = hex.EncodeToString(testSealPub)
	}
	for _, m := range mutate {
		m(&tk)
	}
	s, err := ticket.Sign(tk, d.registrar)
	if err != nil {
		d.t.Fatal(err)
	}
	return s
}

// post sends body to a DTA and returns the status and the decoded response or error.
func post(t testing.TB, url, path, contentType string, body []byte) (int, *wire.DTAResponse, map[string]string) {
	t.Helper()
	resp, err := http.Post(url+path, contentType, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		var e map[string]string
		if err := json.Unmarshal(raw, &e); err != nil {
			t.Fatalf("%s: status %d with a non-JSON body %q", path, resp.StatusCode, raw)
		}
		return resp.StatusCode, nil, e
	}
	var r wire.DTAResponse
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, &r, nil
}

func ticketBody(tk string) []byte {
	b, _ := json.Marshal(wire.DTARequest{Ticket: tk})
	return b
}

// issue posts a ticket to DTA nd and requires success.
func (d *domain) issue(nd *node, path, tk string) *wire.DTAResponse {
	d.t.Helper()
	code, r, e := post(d.t, nd.url, path, "application/json", ticketBody(tk))
	if code != http.StatusOK {
		d.t.Fatalf("DTA %d %s: %d %v", nd.index, path, code, e)
	}
	return r
}

// openShare opens a share sealed to testSealPriv, in the context its entry names, and
// checks that the entry names the sealed bytes.
func openShare(t testing.TB, sh *wire.DTAShare) []byte {
	t.Helper()
	e, err := wire.ParseEntry(sh.Entry)
	if err != nil {
		t.Fatal(err)
	}
	if e.SealedSHA256 != sha256Hex(sh.Sealed) {
		t.Fatalf("the entry does not name the sealed share: %+v", e)
	}
	var th [32]byte
	hex.Decode(th[:], []byte(e.TicketSHA256))
	plain, err := wire.Open(testSealPriv, &wire.SealContext{Domain: e.Domain, DTA: e.DTA, Kind: e.Kind, Slot: e.Slot, TicketSHA256: th}, sh.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	return plain
}

// openClientShare opens a client or permit share: S_i and its DLEQ proof.
func openClientShare(t testing.TB, sh *wire.DTAShare) (*pairing.G1, *pairing.DLEQProof) {
	t.Helper()
	plain := openShare(t, sh)
	if len(plain) != pairing.G1Size+pairing.DLEQProofSize {
		t.Fatalf("sealed share of %d bytes", len(plain))
	}
	S, err := pairing.DecodeG1(plain[:pairing.G1Size])
	if err != nil {
		t.Fatal(err)
	}
	proof, err := pairing.DecodeDLEQProof(plain[pairing.G1Size:])
	if err != nil {
		t.Fatal(err)
	}
	return S, proof
}

func newID(t testing.TB, id string) pairing.IDHash {
	salt := make([]byte, pairing.SaltSize)
	copy(salt, fmt.Sprint(time.Now().UnixNano()))
	h, err := pairing.NewIDHash(testDomain, id, salt)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

var logOptions = translog.Options{CheckpointInterval: 100 * time.Millisecond}

func TestMain(m *testing.M) {
	translog.RouteTesseraLogs(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
