// Package demo tells the story of a polyroot domain in eleven steps, on real devnets
// (three DTAs, the auth server over TLS and an embedded chain, each on its own
// loopback listener; then a 3-of-5 threshold domain) in a temporary directory: what `polyroot demo` and `make demo`
// run. Every step checks that the system behaved as it should; Run fails at the
// first one that did not.
//
// The devnet's keystores use a low scrypt work factor: they live for one run in a
// temporary directory that is removed at the end.
package demo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/polyroot/polyroot/client"
	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/devnet"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/ledger"
	"github.com/polyroot/polyroot/pairing"
)

const (
	aliceID  = "alice@example.com"
	alicePIN = "4821"
)

// Run prints each step to w and returns an error as soon as a step does not behave
// as it should. It stops the devnet and removes its directory before returning.
func Run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "polyroot-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	s := &story{w: w, dir: dir, begin: time.Now()}
	defer s.close()
	for i, st := range s.steps() {
		if err := ctx.Err(); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%d. %s\n", i+1, st.title)
		start := time.Now()
		if err := st.run(ctx); err != nil {
			fmt.Fprintf(w, "   FAILED: %v\n", err)
			return fmt.Errorf("demo step %d: %w", i+1, err)
		}
		s.say("(%s)", since(start))
	}
	fmt.Fprintf(w, "\nEvery step behaved as expected (%s in all).\n", since(s.begin))
	return nil
}

// Steps is the number of steps Run tells.
func Steps() int { return len(new(story).steps()) }

type step struct {
	title string
	run   func(context.Context) error
}

// steps are the story's steps, in order.
func (s *story) steps() []step {
	return []step{
		{"A domain starts: three independent DTAs, the auth server and a chain.", s.devnetUp},
		{"The registrar enrols alice.", s.enrol},
		{"alice's client collects her three shares and sets a PIN.", s.collect},
		{"alice logs in: mutual, zero-knowledge, no certificate authority.", s.login},
		{"Someone with alice's phone tries three wrong PINs.", s.wrongPINs},
		{"A TLS interceptor whose root certificate alice's device trusts sits in the middle.", s.intercept},
		{"DTA 1 goes rogue and tries to act alone.", s.rogueDTA},
		{"The DTAs' logs are anchored on the chain; an auditor checks them.", s.audit},
		{"alice's device is reported stolen: the registrar revokes her.", s.revoke},
		{"Another domain trusts any 3 of 5 DTAs, whose key no one ever held; two DTAs go down.", s.threshold},
		{"Its DTAs refresh their shares: same key, new shares; bob's client follows.", s.reshare},
	}
}

type story struct {
	w     io.Writer
	dir   string
	begin time.Time

	net      *devnet.Devnet
	tnet     *devnet.Devnet // the threshold domain of the last steps
	bob      *client.Client // enrolled in tnet
	ca       *authority     // the domain's own certificate authority, for the server's TLS
	rogueCA  *authority     // the root certificate alice's device was made to trust
	device   *http.Client
	alice    *client.Client
	aliceDir string
	code     string // alice's one-time enrolment code
	// accessToken is from alice's last login, still valid when she is revoked.
	accessToken string
	idhash      string
}

func (s *story) say(format string, args ...any) { fmt.Fprintf(s.w, "   "+format+"\n", args...) }

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond).String() }

func (s *story) close() {
	for _, n := range []*devnet.Devnet{s.tnet, s.net} {
		if n != nil {
			n.Close()
		}
	}
}

// open opens alice's client with her device's HTTP client.
func (s *story) open() (*client.Client, error) {
	return client.Open(s.aliceDir, client.WithServerClient(s.device), client.WithInsecureHTTP())
}

func (s *story) devnetUp(ctx context.Context) error {
	var err error
	if s.ca, err = newAuthority("polyroot demo domain CA"); err != nil {
		return err
	}
	if s.rogueCA, err = newAuthority("Interception Root CA"); err != nil {
		return err
	}
	certFile, keyFile, err := s.ca.issueFiles(s.dir, "server")
	if err != nil {
		return err
	}
	// alice's device trusts the domain's CA and, forced on it, the rogue root.
	roots := x509.NewCertPool()
	roots.AddCert(s.ca.cert)
	roots.AddCert(s.rogueCA.cert)
	s.device = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}, ForceAttemptHTTP2: true}}
	s.net, err = devnet.Start(ctx, devnet.Options{
		Dir: filepath.Join(s.dir, "devnet"), ScryptLogN: 10, AnchorPeriod: time.Second,
		ServerTLSCert: certFile, ServerTLSKey: keyFile, DTAProbeInterval: 500 * time.Millisecond, HTTPClient: s.device,
	})
	if err != nil {
		return err
	}
	b, err := s.bundle()
	if err != nil {
		return err
	}
	for _, d := range b.DTAs {
		s.say("DTA %d at %s: master share s_%d kept in its own keystore; public C_%d = %s…", d.Index, d.URL, d.Index, d.Index, d.Commitment[:16])
	}
	s.say("auth server at %s (TLS); it fetched s_i·Q from each DTA, checked each against C_i, combined sQ", s.net.Info.ServerURL)
	s.say("chain: embedded, contract %s; each DTA's log registered for the DTA's own anchoring key", s.net.Info.Contract)
	s.say("the registrar signed the trust bundle: fingerprint %s", s.net.Info.Fingerprint)
	s.say("no single DTA knows the domain key s = s_1 + s_2 + s_3")
	return nil
}

func (s *story) bundle() (*bundle.Bundle, error) {
	raw, err := os.ReadFile(s.net.Info.Bundle)
	if err != nil {
		return nil, err
	}
	return bundle.Parse(raw)
}

func (s *story) enrol(ctx context.Context) error {
	var created wire.EnrolmentCreated
	if err := s.net.Admin(ctx, "enrolments", wire.EnrolmentRequest{ID: aliceID}, &created); err != nil {
		return err
	}
	s.code, s.idhash = created.Code, created.IDHash
	s.say("one-time enrolment code %s… for %s, valid until %s", created.Code[:6], aliceID, validUntil(created.ExpiresAt))
	s.say("the DTAs will only ever see her identity hash %s…, never her name", s.idhash[:16])
	return nil
}

// validUntil is an expiry with its date: a code is valid for a day, so the time of
// day alone would not say which.
func validUntil(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func (s *story) collect(ctx context.Context) error {
	s.aliceDir = filepath.Join(s.dir, "alice")
	bundleURL := s.net.Info.ServerURL + "/v1/bundle"
	if err := client.Bootstrap(ctx, s.aliceDir, bundleURL, s.net.Info.Fingerprint, client.WithServerClient(s.device)); err != nil {
		return err
	}
	s.say("her client fetched the trust bundle from %s and pinned it by its fingerprint", bundleURL)
	var err error
	if s.alice, err = s.open(); err != nil {
		return err
	}
	start := time.Now()
	if err := s.alice.Enroll(ctx, s.net.Info.ServerURL, s.code, []byte(alicePIN), false); err != nil {
		return err
	}
	_, receipts, err := client.IssuanceReceipts(s.aliceDir)
	if err != nil {
		return err
	}
	type tally struct{ client, permits int }
	per := map[uint32]*tally{}
	for _, r := range receipts {
		if per[r.DTA] == nil {
			per[r.DTA] = &tally{}
		}
		if r.Kind == wire.KindClient {
			per[r.DTA].client++
		} else {
			per[r.DTA].permits++
		}
	}
	if len(per) != s.net.DTAs() {
		return fmt.Errorf("shares from %d DTAs, want %d", len(per), s.net.DTAs())
	}
	for i := uint32(1); int(i) <= s.net.DTAs(); i++ {
		if per[i].client != 1 {
			return fmt.Errorf("DTA %d issued %d client shares, want 1", i, per[i].client)
		}
		s.say("DTA %d: her client share s_%d·A and %d time-permit shares, each with a DLEQ proof (checked against C_%d) and a signed promise of its log entry",
			i, i, per[i].permits, i)
	}
	st := s.alice.Status()
	s.say("the client combined them (%s): it stores only the token s·A − π(PIN)·A, useless without her PIN %s, and permits until %s UTC",
		since(start), alicePIN, st.PermitsUntil.UTC().Format("Jan 2 15:04"))
	return nil
}

func (s *story) login(ctx context.Context) error {
	start := time.Now()
	sess, err := s.alice.Login(ctx, s.net.Info.ServerURL, []byte(alicePIN))
	if err != nil {
		return err
	}
	s.say("logged in as %q in %s: two passes over one TLS connection", sess.ID, since(start))
	s.say("the server checked e(V, Q)·e(U + y·A', sQ) = 1: she holds the token, the PIN and today's permit; it learnt nothing about the PIN")
	s.say("her client checked the server's key-confirmation tag: the server holds sQ, so both derived the same %d-byte session key", len(sess.SessionKey))
	s.say("the key is bound to the TLS channel (RFC 9266 tls-exporter); access token valid until %s UTC", sess.ExpiresAt.UTC().Format("15:04"))
	return nil
}

func (s *story) wrongPINs(ctx context.Context) error {
	for i, pin := range []string{"1111", "2580", "0000"} {
		_, err := s.alice.Login(ctx, s.net.Info.ServerURL, []byte(pin))
		var wrong *client.WrongPINError
		switch {
		case i < 2 && errors.As(err, &wrong) && wrong.TriesLeft == 2-i:
			s.say("PIN %s: refused, %s left (the server never learns how wrong a PIN is)", pin, plural(wrong.TriesLeft, "try", "tries"))
		case i == 2 && errors.Is(err, client.ErrBlocked):
			s.say("PIN %s: refused, and alice is now blocked", pin)
		default:
			return fmt.Errorf("wrong PIN %s: got %v", pin, err)
		}
	}
	if _, err := s.alice.Login(ctx, s.net.Info.ServerURL, []byte(alicePIN)); !errors.Is(err, client.ErrBlocked) {
		return fmt.Errorf("the right PIN of a blocked identity: got %v, want blocked", err)
	}
	s.say("even her right PIN is refused now")
	if err := s.net.Admin(ctx, "unblock", wire.IdentityRequest{ID: aliceID}, nil); err != nil {
		return err
	}
	sess, err := s.alice.Login(ctx, s.net.Info.ServerURL, []byte(alicePIN))
	if err != nil {
		return fmt.Errorf("login after unblock: %w", err)
	}
	s.accessToken = sess.AccessToken
	s.say("the registrar unblocked her; her next login with the right PIN succeeded")
	return nil
}

func (s *story) intercept(ctx context.Context) error {
	proxyURL, stop, err := startInterceptor(s.net.Info.ServerURL, s.rogueCA, s.ca)
	if err != nil {
		return err
	}
	defer stop()
	resp, err := s.device.Get(proxyURL + "/v1/bundle")
	if err != nil {
		return fmt.Errorf("alice's device refused the interceptor's certificate: %w", err)
	}
	resp.Body.Close()
	issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName
	s.say("the interceptor at %s shows a certificate from %q: alice's device accepts it, the padlock shows", proxyURL, issuer)
	_, err = s.alice.Login(ctx, proxyURL, []byte(alicePIN))
	if !errors.Is(err, client.ErrPossibleInterception) {
		return fmt.Errorf("login through the interceptor: got %v, want possible interception", err)
	}
	s.say("login refused: %v", err)
	s.say("the server saw another TLS channel than alice's client: the interceptor learnt no key and could not log in for her")
	return nil
}

func (s *story) rogueDTA(ctx context.Context) error {
	b, err := s.bundle()
	if err != nil {
		return err
	}
	raw, err := s.net.DTAKeystore(1).Get(ctx, dta.SecretMasterShare)
	if err != nil {
		return err
	}
	s1, err := pairing.DecodeScalar(raw)
	if err != nil {
		return err
	}
	idb, err := hex.DecodeString(s.idhash)
	if err != nil || len(idb) != len(pairing.IDHash{}) {
		return fmt.Errorf("bad idhash %q", s.idhash)
	}
	var id pairing.IDHash
	copy(id[:], idb)
	domain := pairing.Domain{Name: b.Domain, PermitPeriod: b.PermitPeriod}
	slot := domain.Slot(time.Now())
	forged := &pairing.Client{Domain: domain, IDHash: id, Slot: slot,
		Token:  pairing.ExtractPIN(domain.Name, id, pairing.IdentityPoint(id).Mul(s1), []byte(alicePIN)),
		Permit: pairing.PermitPoint(id, slot, domain.PermitPeriod).Mul(s1)}
	code, err := rawLogin(ctx, s.device, s.net.Info.ServerURL, forged, []byte(alicePIN))
	if err != nil {
		return err
	}
	if code != "login_failed" {
		return fmt.Errorf("a login with DTA 1's shares alone: got %q, want login_failed", code)
	}
	s.say("with its master share s_1 it made alice's key share s_1·A and permit share s_1·T, and even knowing her PIN")
	s.say("tried to log in as alice: refused (%s); one share of three is no key", code)

	impostor, stop, err := startImpostor(domain, pairing.G2Generator().Mul(s1), s.rogueCA)
	if err != nil {
		return err
	}
	defer stop()
	_, err = s.alice.Login(ctx, impostor, []byte(alicePIN))
	if !errors.Is(err, client.ErrServerNotAuthentic) {
		return fmt.Errorf("login at a server holding s_1·Q only: got %v, want not authentic", err)
	}
	s.say("it ran its own auth server at %s with s_1·Q as the server key (and a certificate alice's device trusts):", impostor)
	s.say("alice's client refused it: %v", err)
	return nil
}

func (s *story) audit(ctx context.Context) error {
	b, err := s.bundle()
	if err != nil {
		return err
	}
	cfg := ledger.AuditConfig{Bundle: b, Chain: s.net.Chain(), Contract: common.HexToAddress(s.net.Info.Contract)}
	var report *ledger.Report
	var history []ledger.IdentityEntry
	deadline := time.Now().Add(30 * time.Second)
	for {
		report, history, err = ledger.AuditWithIdentity(ctx, cfg, s.idhash)
		if err == nil && report.OK() && anchoredUpToDate(report) {
			break
		}
		if time.Now().After(deadline) {
			if err == nil && !report.OK() {
				err = fmt.Errorf("audit problems: %v", report.Problems())
			}
			return fmt.Errorf("the logs were not anchored up to date within 30 s (%v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	for _, r := range report.DTAs {
		last := r.Anchors[len(r.Anchors)-1]
		s.say("DTA %d: log of %d entries, anchored %s, last at size %d in block %d; every entry re-hashed, every consistency proof checked",
			r.Index, r.CheckpointSize, plural(len(r.Anchors), "time", "times"), last.Size, last.Block)
	}
	kinds := map[string]int{}
	for _, e := range history {
		kinds[e.Kind]++
	}
	if err := s.checkPromises(history); err != nil {
		return err
	}
	s.say("alice's issuance history: %d entries (%d client shares, %d permit shares), each at the index its DTA promised her,",
		len(history), kinds[wire.KindClient], kinds[wire.KindPermit])
	s.say("and none she did not receive: no one else was issued a share for her")
	s.say("(DTA 1 computed step 7's shares offline with its master share: logs show what the DTA services issue)")
	return nil
}

// checkPromises checks that every share alice's client received is in her history
// at the log index its DTA promised, and that her history holds nothing else.
func (s *story) checkPromises(history []ledger.IdentityEntry) error {
	type at struct {
		dta   uint32
		index uint64
	}
	logged := map[at]bool{}
	for _, e := range history {
		logged[at{e.DTA, e.Index}] = true
	}
	_, receipts, err := client.IssuanceReceipts(s.aliceDir)
	if err != nil {
		return err
	}
	for _, r := range receipts {
		if !logged[at{r.DTA, r.Promise.Index}] {
			return fmt.Errorf("DTA %d promised alice entry %d, which her history lacks", r.DTA, r.Promise.Index)
		}
	}
	if len(history) != len(receipts) {
		return fmt.Errorf("alice's history has %d entries and her client received %d shares: someone else got shares for her", len(history), len(receipts))
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// anchoredUpToDate: every DTA's log has entries and is anchored up to its checkpoint.
func anchoredUpToDate(r *ledger.Report) bool {
	for _, d := range r.DTAs {
		if d.CheckpointSize == 0 || len(d.Anchors) == 0 || d.Lag > 0 {
			return false
		}
	}
	return true
}

func (s *story) revoke(ctx context.Context) error {
	var res wire.RevokeResult
	if err := s.net.Admin(ctx, "revoke", wire.IdentityRequest{ID: aliceID}, &res); err != nil {
		return err
	}
	if len(res.Unreachable) > 0 {
		return fmt.Errorf("DTAs %v did not get the revocation", res.Unreachable)
	}
	s.say("the server refuses her at once and sent the registrar-signed notice to all three DTAs, which logged it")
	err := s.alice.RefreshPermits(ctx, s.net.Info.ServerURL, s.accessToken, 1)
	if !errors.Is(err, client.ErrRevoked) {
		return fmt.Errorf("permits for a revoked identity's access token: got %v, want revoked", err)
	}
	s.say("her access token from step 5 has not expired, yet it gets no permits: %v", err)
	_, err = s.alice.Login(ctx, s.net.Info.ServerURL, []byte(alicePIN))
	if wrong := (*client.WrongPINError)(nil); !errors.As(err, &wrong) {
		return fmt.Errorf("login of a revoked identity: got %v, want the wrong-PIN answer", err)
	}
	s.say("her login with the right PIN is refused, with the same answer as a wrong PIN: a thief learns nothing")
	b, err := s.bundle()
	if err != nil {
		return err
	}
	code, err := askPermit(ctx, b, s.net.Registrar(), s.idhash)
	if err != nil {
		return err
	}
	if code != "revoked" {
		return fmt.Errorf("a DTA answered a permit ticket of a revoked identity with %q", code)
	}
	s.say("and DTA 2 refuses her permits even with a valid permit ticket: %s", code)
	return nil
}
