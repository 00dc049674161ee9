//go:build linux

package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// Sizes of TestServerKill9.
const (
	k9Good      = 8  // identities that log in with the right PIN
	k9Wrong     = 12 // identities that get only wrong PINs: failures counted, some blocked
	k9Revoked   = 8  // identities logging in while the registrar revokes them
	k9Codes     = 16 // codes created before the burst and redeemed in it
	k9Creates   = 8  // enrolments the registrar creates in the burst
	k9GoodTries = 6  // logins per good identity
	k9BadTries  = 4  // wrong PINs per wrong identity
	k9RevTries  = 3  // logins per revoked identity
	k9Workers   = 64 // concurrent requests
	k9KillAt    = 70 // answers in the burst before the kill -9
	k9PIN       = "2468"
	k9WrongPIN  = "1357"
	k9MaxFails  = 3 // the server's default max_failures
)

// TestServerKill9 kills (SIGKILL) a real `polyroot server serve` process in the middle
// of 64 concurrent logins (right and wrong PINs), code redemptions, enrolment
// creations and revocations, restarts it on the same data directory, and checks that
// every answer the clients received before the kill is kept:
//
//   - a failure count answered (login_failed with its tries left) is stored at least as
//     high, and the restarted server goes on from the stored count; an identity
//     answered "blocked" is still blocked;
//   - a revocation answered is stored, and the identity cannot log in;
//   - an enrolment answered by the registrar (its code) can be redeemed, and a
//     redemption answered is stored with the client's key: the client completes it
//     with the DTAs and logs in;
//   - no code is burnt by the crash. The server redeems a code in one synced
//     transaction (client key and answer recorded, code used up, together), so a
//     redemption that got no answer is either not stored (the code is still there) or
//     stored with the client's key and its answer. Before, the used code was deleted:
//     a stored redemption whose answer was lost left an enrolment that nobody could
//     complete (its tickets never reached the client), and the code answered 404 to
//     the same request: burnt. Now, in both cases, the same client sending the same
//     request again (the same key and proof) gets its package (the stored one, the
//     same tickets), collects its shares and logs in; a request for another key is
//     refused, as always.
//
// It checks the database directly (between the kill and the restart) and through the
// restarted server. kill -9 leaves the page cache alone, so it tests what the server
// wrote before answering, not the fsync itself (bbolt syncs every commit).
func TestServerKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test builds and runs the polyroot binary; skipped with -short")
	}
	start := time.Now()
	dir := t.TempDir()
	bin := testbin.Polyroot(t, dir)
	t.Logf("built polyroot in %v", time.Since(start).Round(time.Millisecond))

	// A domain of two DTAs in this process, without permits; the auth server in a
	// child process, its key provisioned with the CLI.
	d := testdomain.New(t, "kill9.example.test", 2, 0)
	bundleFile := d.WriteBundle(dir)
	regFile := filepath.Join(dir, "registrar.pem")
	der, err := x509.MarshalPKCS8PrivateKey(d.Registrar)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(regFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	keysDir, dataDir := filepath.Join(dir, "keys"), filepath.Join(dir, "data")
	childEnv := testbin.ChildEnv("POLYROOT_ADMIN_TOKEN=" + testAdmin)
	prov := exec.Command(bin, "server", "provision", "--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir)
	prov.Env = childEnv
	if out, err := prov.CombinedOutput(); err != nil {
		t.Fatalf("server provision: %v\n%s", err, out)
	}
	serveArgs := []string{"server", "serve", "--bundle", bundleFile, "--registrar-key", regFile, "--keystore-dir", keysDir,
		"--data-dir", dataDir, "--listen", "127.0.0.1:0", "--metrics-listen", "off", "--max-failures", fmt.Sprint(k9MaxFails),
		"--rate-limit", "1000000", "--rate-burst", "1000000", "--log-format", "text", "--log-level", "warn"}
	logPath := filepath.Join(dir, "serve.log")
	first := testbin.StartChild(t, bin, childEnv, logPath, serveArgs)

	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: k9Workers}}
	defer hc.CloseIdleConnections()
	k := &kill9{t: t, d: d, hc: hc, bundleFile: bundleFile}

	// Before the burst: enrolled identities (with the client package) and codes.
	idents := make([]*k9Ident, k9Good+k9Wrong+k9Revoked)
	testbin.RunAll(8, len(idents), func(i int) {
		idents[i] = &k9Ident{minTries: k9MaxFails}
		switch {
		case i < k9Good:
			idents[i].kind = "good"
		case i < k9Good+k9Wrong:
			idents[i].kind = "wrong"
		default:
			idents[i].kind = "revoked"
		}
		idents[i].name = fmt.Sprintf("%s-%d@example.test", idents[i].kind, i)
		idents[i].cl, idents[i].id, idents[i].err = k.enrol(first.URL, idents[i].name)
	})
	for _, id := range idents {
		if id.err != nil {
			t.Fatal(id.err)
		}
	}
	codes := make([]*k9Code, k9Codes)
	for i := range codes {
		created, err := k.create(first.URL, fmt.Sprintf("code-%d@example.test", i))
		if err != nil {
			t.Fatal(err)
		}
		codes[i] = k.newCode(created)
	}
	creates := make([]*k9Created, k9Creates)
	t.Logf("set-up: %d identities enrolled, %d codes, in %v", len(idents), len(codes), time.Since(start).Round(time.Millisecond))

	// First the wrong PINs of half the wrong identities, which block them; then the
	// burst in random order, with wrong PINs for the other half (and more for the
	// blocked ones) mixed in. Once k9KillAt of its operations have been answered, the
	// server is killed (-9).
	var early, ops []func() bool // each reports whether it got an answer
	for i, id := range idents {
		switch id.kind {
		case "good":
			for range k9GoodTries {
				ops = append(ops, func() bool { return k.login(first.URL, id, k9PIN) })
			}
		case "wrong":
			for range k9BadTries {
				op := func() bool { return k.login(first.URL, id, k9WrongPIN) }
				if i%2 == 0 {
					early = append(early, op)
				}
				ops = append(ops, op)
			}
		case "revoked":
			for range k9RevTries {
				ops = append(ops, func() bool { return k.login(first.URL, id, k9PIN) })
			}
			ops = append(ops, func() bool { return k.revoke(first.URL, id) })
		}
	}
	for _, c := range codes {
		ops = append(ops, func() bool { return k.redeem(first.URL, c) })
	}
	for i := range creates {
		ops = append(ops, func() bool {
			created, err := k.create(first.URL, fmt.Sprintf("new-%d@example.test", i))
			if err != nil {
				return false
			}
			creates[i] = &k9Created{created: created}
			return true
		})
	}
	rand.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	testbin.RunAll(len(early), len(early), func(i int) { early[i]() })
	var answered atomic.Int64
	var killOnce sync.Once
	burst := time.Now()
	testbin.RunAll(k9Workers, len(ops), func(i int) {
		if ops[i]() && answered.Add(1) == k9KillAt {
			killOnce.Do(first.Kill)
		}
	})
	killOnce.Do(first.Kill)
	first.Wait(t)
	if n := answered.Load(); n < k9KillAt || n == int64(len(ops)) {
		t.Fatalf("the kill did not land in the burst: %d of %d operations answered", n, len(ops))
	}
	for _, err := range k.unexpected {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}

	// Between the kill and the restart: the database holds what was answered.
	var blocked, counted, lostAnswers, revoked, redeemed, inFlight int
	st, err := openStore(filepath.Join(dataDir, "server.db"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	fails, err := st.loadFailures()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range idents {
		rec := fails[id.id]
		switch {
		case id.kind == "good" && rec != (failRecord{}):
			t.Errorf("%s: only right PINs, but a failure record %+v", id.name, rec)
		case id.kind == "wrong":
			// Every wrong PIN answered was counted; an answer with tries left n
			// means a count of at least max-n.
			if rec.Count < id.acked || rec.Count < k9MaxFails-id.minTries || rec.Day < id.acked || rec.Count > id.sent {
				t.Errorf("%s: %d wrong PINs answered (lowest tries left %d), %d sent; stored %+v", id.name, id.acked, id.minTries, id.sent, rec)
			}
			if id.acked > 0 {
				counted++
			}
			if id.minTries == 0 {
				blocked++
			}
		}
		e, err := st.enrolment(id.id)
		if err != nil {
			t.Fatalf("%s: %v", id.name, err)
		}
		if id.revokeAcked {
			revoked++
			if e.Revoked == nil {
				t.Errorf("%s: revocation answered, not stored", id.name)
			}
		}
	}
	for i, c := range codes {
		e, err := st.enrolment(c.id)
		if err != nil {
			t.Fatalf("code %d: its enrolment: %v", i, err)
		}
		stored := bytes.Equal(e.ClientKey, c.req.ClientKey)
		switch {
		case c.pkg != nil && !stored:
			t.Errorf("code %d: redemption answered, but the enrolment holds client key %x", i, e.ClientKey)
		case c.pkg != nil:
			redeemed++
		case stored:
			lostAnswers++ // stored, but the answer was lost to the kill
		}
		if c.inFlight {
			inFlight++
		}
	}
	for i, c := range creates {
		if c == nil {
			continue
		}
		if _, err := st.enrolment(c.id()); err != nil {
			t.Errorf("enrolment %d created (answered), not stored: %v", i, err)
		}
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("burst: %d of %d operations answered before the kill, in %v; answered: %d identities with failures counted (%d blocked), "+
		"%d revocations, %d redemptions; %d redemptions in flight at the kill, %d of them stored",
		answered.Load(), len(ops), time.Since(burst).Round(time.Millisecond), counted, blocked, revoked, redeemed, inFlight, lostAnswers)
	if blocked == 0 {
		t.Error("no identity was blocked before the kill (the wrong PINs sent first should block some)")
	}

	// Restart on the same data directory; the restarted server behaves as stored.
	second := testbin.StartChild(t, bin, childEnv, logPath, serveArgs)
	ctx := context.Background()
	for _, id := range idents {
		rec := fails[id.id]
		switch {
		case id.revokeAcked:
			if _, err := id.cl.Login(ctx, second.URL, []byte(k9PIN)); !errors.Is(err, client.ErrWrongPIN) && !errors.Is(err, client.ErrBlocked) {
				t.Errorf("%s: revoked before the kill; a login with the right PIN after the restart: %v", id.name, err)
			}
		case id.kind == "revoked":
			// Its revocation got no answer: stored or not, either is right.
		case id.kind == "wrong" && rec.Count >= k9MaxFails:
			if _, err := id.cl.Login(ctx, second.URL, []byte(k9PIN)); !errors.Is(err, client.ErrBlocked) {
				t.Errorf("%s: blocked before the kill (stored count %d); the right PIN after the restart: %v", id.name, rec.Count, err)
			}
		case id.kind == "wrong":
			// The restarted server counts on from the stored count.
			want := k9MaxFails - rec.Count - 1
			_, err := id.cl.Login(ctx, second.URL, []byte(k9WrongPIN))
			var wrong *client.WrongPINError
			if (want == 0 && !errors.Is(err, client.ErrBlocked)) || (want > 0 && (!errors.As(err, &wrong) || wrong.TriesLeft != want)) {
				t.Errorf("%s: stored count %d; a wrong PIN after the restart: %v, want %d tries left", id.name, rec.Count, err, want)
			}
		default:
			if _, err := id.cl.Login(ctx, second.URL, []byte(k9PIN)); err != nil {
				t.Errorf("%s: a login with the right PIN after the restart: %v", id.name, err)
			}
		}
	}

	h := &harness{e: &env{d: d}, url: second.URL, http: hc}
	var replayed int
	for i, c := range codes {
		if c.pkg == nil { // no answer before the kill: the same request again
			var pkg wire.EnrolPackage
			st, body := do(t, hc, "POST", second.URL+"/v1/enrol", "", c.req, &pkg)
			if st != http.StatusOK {
				t.Errorf("code %d: not answered before the kill; the same redemption after the restart: %d %s", i, st, body)
				continue
			}
			c.pkg = &pkg
			replayed++
		}
		// Another key is refused: the code stays single use.
		other := h.redeemRequest(t, c.code)
		if st, body := do(t, hc, "POST", second.URL+"/v1/enrol", "", other, nil); st != http.StatusNotFound {
			t.Errorf("code %d: redeemed; a redemption for another key after the restart: %d %s", i, st, body)
		}
		k.complete(h, i, c)
	}
	for i, c := range creates {
		if c == nil {
			continue
		}
		cl, err := k.newClient()
		if err == nil {
			err = cl.Enroll(ctx, second.URL, c.created.Code, []byte(k9PIN), false)
		}
		if err == nil {
			_, err = cl.Login(ctx, second.URL, []byte(k9PIN))
		}
		if err != nil {
			t.Errorf("enrolment %d, created before the kill: enrolling and logging in after the restart: %v", i, err)
		}
	}
	t.Logf("after the restart: %d codes without an answer redeemed by the same request again; every code completed and logged in", replayed)
	second.Stop(t)
	t.Logf("kill -9 test done in %v", time.Since(start).Round(time.Millisecond))
}

// kill9 holds the shared state of TestServerKill9's operations.
type kill9 struct {
	t          *testing.T
	d          *testdomain.Domain
	hc         *http.Client
	bundleFile string

	mu         sync.Mutex
	unexpected []error // answers no operation expects
}

// A k9Ident is an identity enrolled before the burst and what the burst answered it.
type k9Ident struct {
	kind, name string
	cl         *client.Client
	id         pairing.IDHash
	err        error

	// Under kill9.mu:
	sent        int  // logins sent (wrong identities: wrong PINs)
	acked       int  // login failures answered
	minTries    int  // the lowest tries left answered
	revokeAcked bool // its revocation was answered
}

// A k9Code is a code created before the burst, redeemed in it.
type k9Code struct {
	code string
	id   pairing.IDHash
	req  *wire.RedeemRequest
	seal []byte             // the private key of req.ClientKey
	pkg  *wire.EnrolPackage // the answer, if one came
	// inFlight: no answer, but the connection was not refused
	inFlight bool
}

// A k9Created is an enrolment the registrar created in the burst, as answered.
type k9Created struct{ created *wire.EnrolmentCreated }

func (c *k9Created) id() pairing.IDHash {
	var id pairing.IDHash
	hex.Decode(id[:], []byte(c.created.IDHash))
	return id
}

func (k *kill9) fail(format string, args ...any) {
	k.mu.Lock()
	k.unexpected = append(k.unexpected, fmt.Errorf(format, args...))
	k.mu.Unlock()
}

// newClient bootstraps a client directory with the domain's bundle.
func (k *kill9) newClient() (*client.Client, error) {
	dir, err := os.MkdirTemp(k.t.TempDir(), "client")
	if err != nil {
		return nil, err
	}
	if err := client.Bootstrap(context.Background(), dir, k.bundleFile, k.d.Fingerprint, client.WithInsecureDTAHTTP()); err != nil {
		return nil, err
	}
	return client.Open(dir, client.WithInsecureHTTP(), client.WithInsecureDTAHTTP(), client.WithServerClient(k.hc))
}

// create asks the registrar for an enrolment of appID (an error: no answer or a refusal).
func (k *kill9) create(url, appID string) (*wire.EnrolmentCreated, error) {
	var created wire.EnrolmentCreated
	st, body, err := tryDo(k.hc, "POST", url+"/v1/admin/enrolments", testAdmin, wire.EnrolmentRequest{ID: appID}, &created)
	if err != nil {
		return nil, err
	}
	if st != http.StatusOK {
		k.fail("create enrolment %s: %d %s", appID, st, body)
		return nil, fmt.Errorf("create enrolment %s: %d %s", appID, st, body)
	}
	return &created, nil
}

// enrol creates an enrolment and enrols a client with the client package.
func (k *kill9) enrol(url, appID string) (*client.Client, pairing.IDHash, error) {
	var id pairing.IDHash
	created, err := k.create(url, appID)
	if err != nil {
		return nil, id, err
	}
	cl, err := k.newClient()
	if err != nil {
		return nil, id, err
	}
	if err := cl.Enroll(context.Background(), url, created.Code, []byte(k9PIN), false); err != nil {
		return nil, id, fmt.Errorf("enrol %s: %w", appID, err)
	}
	_, err = hex.Decode(id[:], []byte(cl.Status().IDHash))
	return cl, id, err
}

// newCode prepares the redemption of a created code with a fresh client key.
func (k *kill9) newCode(created *wire.EnrolmentCreated) *k9Code {
	c := &k9Code{code: created.Code}
	hex.Decode(c.id[:], []byte(created.IDHash))
	pub, priv, err := wire.NewSealKey()
	if err != nil {
		k.t.Fatal(err)
	}
	if c.req, err = wire.NewRedeemRequest(created.Code, k.d.Name, pub, nil); err != nil {
		k.t.Fatal(err)
	}
	c.seal = priv
	return c
}

// login logs id in with pin and records the answer.
func (k *kill9) login(url string, id *k9Ident, pin string) bool {
	k.mu.Lock()
	id.sent++
	k.mu.Unlock()
	_, err := id.cl.Login(context.Background(), url, []byte(pin))
	var wrong *client.WrongPINError
	var api *client.APIError
	tries := -1
	switch {
	case err == nil:
		if pin != k9PIN {
			k.fail("%s: a wrong PIN logged in", id.name)
		}
		return true
	case errors.As(err, &wrong):
		tries = wrong.TriesLeft
	case errors.Is(err, client.ErrBlocked):
		tries = 0
	case errors.As(err, &api):
		k.fail("%s: login: %v", id.name, err)
		return true
	default:
		return false // no answer: the kill
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case id.kind == "wrong":
		id.acked++
		id.minTries = min(id.minTries, tries)
	case id.kind == "revoked" && id.revokeAcked:
		// revoked meanwhile: refused like a wrong PIN
	case id.kind == "revoked":
		// the revocation may be stored and not yet answered
	default:
		k.fail("%s: the right PIN refused (tries left %d): %v", id.name, tries, err)
	}
	return true
}

// revoke revokes id by its idhash.
func (k *kill9) revoke(url string, id *k9Ident) bool {
	st, body, err := tryDo(k.hc, "POST", url+"/v1/admin/revoke", testAdmin, wire.IdentityRequest{IDHash: hex.EncodeToString(id.id[:])}, nil)
	if err != nil {
		return false
	}
	if st != http.StatusOK {
		k.fail("%s: revoke: %d %s", id.name, st, body)
		return true
	}
	k.mu.Lock()
	id.revokeAcked = true
	k.mu.Unlock()
	return true
}

// redeem sends c's redemption.
func (k *kill9) redeem(url string, c *k9Code) bool {
	var pkg wire.EnrolPackage
	st, body, err := tryDo(k.hc, "POST", url+"/v1/enrol", "", c.req, &pkg)
	if err != nil && body == nil { // no answer, or not all of it
		if !errors.Is(err, syscall.ECONNREFUSED) {
			k.mu.Lock()
			c.inFlight = true // sent, perhaps received, when the server died
			k.mu.Unlock()
		}
		return false
	}
	if err != nil || st != http.StatusOK {
		k.fail("redeem %s: %d %s %v", c.code, st, body, err)
		return true
	}
	k.mu.Lock()
	c.pkg = &pkg
	k.mu.Unlock()
	return true
}

// complete finishes the enrolment of a redeemed code as its client: the shares from
// every DTA, sealed to its key, then a login.
func (k *kill9) complete(h *harness, i int, c *k9Code) {
	t := k.t
	t.Helper()
	if c.pkg.IDHash != hex.EncodeToString(c.id[:]) {
		t.Errorf("code %d: the package names idhash %s, the code was for %x", i, c.pkg.IDHash, c.id)
		return
	}
	keys, err := h.e.tryFetch("client", c.pkg.ClientTicket, c.id, c.seal)
	if err != nil {
		t.Errorf("code %d: the client's shares: %v", i, err)
		return
	}
	tc := &tclient{pkg: *c.pkg, id: c.id, domain: k.d.Name, sealKey: c.seal,
		token: pairing.ExtractPIN(k.d.Name, c.id, keys[0], pinBytes(k9PIN))}
	if res := h.login(t, tc, k9PIN, loginOpts{}); res.status != http.StatusOK {
		t.Errorf("code %d: login after completing the enrolment: %d %s", i, res.status, res.body)
	}
}
