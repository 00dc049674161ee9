package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/dkgnet"
	"github.com/polyroot/polyroot/internal/freeport"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// freePort is a loopback address free for a child process to listen on.
func freePort(t *testing.T) string {
	ln, err := freeport.Listen() // below the ephemeral range: still free when a child listens there
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// dkgSetup makes n DTAs with dta init --dkg and a t-of-n session among them on free
// loopback ports; it returns the file namer and the arguments of each DTA's dta dkg.
func dkgSetup(t *testing.T, n, thr int, timeout string) (p func(string, int) string, dkgArgs func(int) []string) {
	clearEnv(t)
	t.Setenv(envPassphrase, "correct horse battery staple")
	t.Setenv(envScryptLogN, "10")
	dir := t.TempDir()
	p = func(f string, i int) string { return filepath.Join(dir, fmt.Sprintf(f, i)) }
	session := []string{"dkg", "session", "--domain", dkgDomain, "--threshold", fmt.Sprint(thr), "--out", filepath.Join(dir, "session.json")}
	addrs := map[int]string{}
	for i := 1; i <= n; i++ {
		mustRun(t, "dta", "init", "--dkg", "--domain", dkgDomain, "--index", fmt.Sprint(i), "--url", fmt.Sprintf("https://dta%d.example.net", i),
			"--keystore-dir", p("keys-%d", i), "--out", p("dta-%d.json", i))
		raw, _ := os.ReadFile(p("dta-%d.json", i))
		if !strings.Contains(string(raw), `"commitment": ""`) {
			t.Fatalf("dta init --dkg: the record has a commitment:\n%s", raw)
		}
		addrs[i] = freePort(t)
		session = append(session, "--member", p("dta-%d.json", i)+"=http://"+addrs[i])
	}
	if out := mustRun(t, session...); len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("dkg session printed %q, want the file's SHA-256", out)
	}
	dkgArgs = func(i int) []string {
		return []string{"dta", "dkg", "--keystore-dir", p("keys-%d", i), "--session", filepath.Join(dir, "session.json"),
			"--record", p("dta-%d.json", i), "--listen", addrs[i], "--start-timeout", timeout, "--round-timeout", timeout,
			"--transcript-out", p("transcript-%d.json", i), "--record-out", p("dta-%d.dkg.json", i)}
	}
	return p, dkgArgs
}

const dkgDomain = "api.example.com"

// TestDKGFlow is threshold mode's set-up through the command: three dta init --dkg, dkg
// session, three dta dkg at once, bundle assemble --mode threshold 2 of 3, fingerprint.
func TestDKGFlow(t *testing.T) {
	p, dkgArgs := dkgSetup(t, 3, 2, "20s")
	const domain = dkgDomain
	dir := filepath.Dir(p("%d", 0))
	// A key generation of 3 of 3 is refused by the registrar's tool, and by a DTA given
	// such a session file (edited by hand): fewer than 2t−1 members.
	const tooFew = "a key generation needs at least 2t−1 = 5 members"
	session := []string{"dkg", "session", "--domain", domain, "--threshold", "3", "--out", filepath.Join(dir, "session-3.json")}
	for i := 1; i <= 3; i++ {
		session = append(session, "--member", p("dta-%d.json", i)+"=http://127.0.0.1:1")
	}
	if code, _, errOut := run(session...); code == 0 || !strings.Contains(errOut, tooFew+", so that t honest ones remain however t−1 collude") ||
		!strings.Contains(errOut, "lower the threshold to 2 or add DTAs") {
		t.Fatalf("dkg session 3 of 3: exit %d: %s", code, errOut)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "session.json"))
	if err != nil {
		t.Fatal(err)
	}
	edited := bytes.Replace(raw, []byte(`"threshold": 2`), []byte(`"threshold": 3`), 1)
	if bytes.Equal(edited, raw) {
		t.Fatalf("the session file names no threshold 2:\n%s", raw)
	}
	if err := os.WriteFile(filepath.Join(dir, "session-3.json"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(dkgArgs(1), "--session", filepath.Join(dir, "session-3.json"))
	if code, _, errOut := run(args...); code == 0 || !strings.Contains(errOut, tooFew) {
		t.Fatalf("dta dkg on a 3-of-3 session: exit %d: %s", code, errOut)
	}
	var wg sync.WaitGroup
	errs := make([]string, 4)
	for i := 1; i <= 3; i++ {
		wg.Go(func() {
			if code, _, errOut := run(dkgArgs(i)...); code != 0 {
				errs[i] = errOut
			}
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Fatalf("dta dkg of DTA %d: %s", i, e)
		}
	}
	t1, _ := os.ReadFile(p("transcript-%d.json", 1))
	for i := 2; i <= 3; i++ {
		if ti, _ := os.ReadFile(p("transcript-%d.json", i)); !bytes.Equal(ti, t1) {
			t.Fatalf("DTA %d wrote another transcript", i)
		}
	}
	// A second run refuses: the keystore holds a master share now.
	if code, _, errOut := run(dkgArgs(1)...); code == 0 || !strings.Contains(errOut, "already holds a master share") {
		t.Fatalf("second dta dkg: exit %d: %s", code, errOut)
	}

	// Each keystore holds the share of its record's commitment, and any two combine
	// to the transcript's public key.
	tr, err := dkgnet.ParseTranscript(t1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := tr.Verify()
	if err != nil {
		t.Fatal(err)
	}
	shares := map[uint32]*pairing.Scalar{}
	for i := 1; i <= 3; i++ {
		ks, err := keystore.OpenFile(p("keys-%d", i), []byte("correct horse battery staple"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := ks.Get(context.Background(), dta.SecretMasterShare)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pairing.DecodeScalar(raw)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := readRecord(p("dta-%d.dkg.json", i), domain)
		if err != nil {
			t.Fatal(err)
		}
		if c, _ := rec.CommitmentPoint(); !pairing.G1Generator().Mul(s).Equal(c) {
			t.Fatalf("DTA %d: the stored share is not the record's commitment", i)
		}
		shares[uint32(i)] = s
	}
	l, _ := pairing.LagrangeCoefficients([]uint32{1, 3})
	sum := new(pairing.Scalar).Add(new(pairing.Scalar).Mul(l[0], shares[1]), new(pairing.Scalar).Mul(l[1], shares[3]))
	if !pairing.G1Generator().Mul(sum).Equal(res.PublicKey) {
		t.Fatal("the stored shares of DTAs 1 and 3 do not combine to the public key")
	}

	mustRun(t, "registrar", "keygen", "--out", filepath.Join(dir, "registrar.pem"))
	assemble := func(tt string, records ...string) (int, string) {
		args := []string{"bundle", "assemble", "--domain", domain, "--registrar-key", filepath.Join(dir, "registrar.pem"),
			"--mode", "threshold", "--threshold", tt, "--transcript", p("transcript-%d.json", 2), "--out", filepath.Join(dir, "bundle.json"), "--replace"}
		for _, r := range records {
			args = append(args, "--record", r)
		}
		code, _, errOut := run(args...)
		return code, errOut
	}
	dkgRecords := []string{p("dta-%d.dkg.json", 1), p("dta-%d.dkg.json", 2), p("dta-%d.dkg.json", 3)}
	if code, errOut := assemble("3", dkgRecords...); code == 0 || !strings.Contains(errOut, "threshold 2, not --threshold 3") {
		t.Fatalf("assemble with the wrong threshold: exit %d: %s", code, errOut)
	}
	// The init record of DTA 3 has no commitment; a record of another DTA 3 has another.
	if code, _ := assemble("2", dkgRecords[0], dkgRecords[1], p("dta-%d.json", 3)); code == 0 {
		t.Fatal("assemble accepted a record without commitment")
	}
	raw, _ = os.ReadFile(dkgRecords[2])
	var other []byte
	r1, _ := os.ReadFile(dkgRecords[0])
	c1 := strings.SplitN(strings.SplitN(string(r1), `"commitment": "`, 2)[1], `"`, 2)[0]
	c3 := strings.SplitN(strings.SplitN(string(raw), `"commitment": "`, 2)[1], `"`, 2)[0]
	other = bytes.Replace(raw, []byte(c3), []byte(c1), 1)
	forged := filepath.Join(dir, "forged-3.json")
	os.WriteFile(forged, other, 0o644)
	if code, errOut := assemble("2", dkgRecords[0], dkgRecords[1], forged); code == 0 || !strings.Contains(errOut, "another commitment") {
		t.Fatalf("assemble with a wrong commitment: exit %d: %s", code, errOut)
	}
	if code, errOut := assemble("2", dkgRecords...); code != 0 || !strings.Contains(errOut, "verified: confirmed by all 3 DTAs") {
		t.Fatalf("assemble: exit %d: %s", code, errOut)
	}
	if out := mustRun(t, "bundle", "fingerprint", filepath.Join(dir, "bundle.json")); len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("fingerprint: %q", out)
	}
	// The bundle names the transcript file by its SHA-256 (every DTA wrote the same bytes).
	bf, _ := os.ReadFile(filepath.Join(dir, "bundle.json"))
	b, err := bundle.Parse(bf)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(t1); b.TranscriptSHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("bundle transcript_sha256 %q, want the transcript file's hash", b.TranscriptSHA256)
	}
}

// TestDKGAbortStoresNothing: DTA 3 never starts; the others fail naming it and their
// keystores hold no master share, so they can run again.
func TestDKGAbortStoresNothing(t *testing.T) {
	p, dkgArgs := dkgSetup(t, 3, 2, "1s")
	var wg sync.WaitGroup
	errs := make([]string, 3)
	for i := 1; i <= 2; i++ {
		wg.Go(func() {
			code, _, errOut := run(dkgArgs(i)...)
			if code == 0 {
				errOut = "exit 0"
			}
			errs[i] = errOut
		})
	}
	wg.Wait()
	for i := 1; i <= 2; i++ {
		if !strings.Contains(errs[i], "round hello: no hello from DTA 3") || !strings.Contains(errs[i], "nothing was stored") {
			t.Fatalf("DTA %d: %s", i, errs[i])
		}
		ks, err := keystore.OpenFile(p("keys-%d", i), []byte("correct horse battery staple"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Get(context.Background(), dta.SecretMasterShare); !errors.Is(err, keystore.ErrNotFound) {
			t.Fatalf("DTA %d: the keystore holds a master share after an aborted DKG (%v)", i, err)
		}
		if _, err := os.Stat(p("transcript-%d.json", i)); err == nil {
			t.Fatalf("DTA %d wrote a transcript", i)
		}
	}
}
