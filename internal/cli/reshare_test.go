package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

const testPassphrase = "correct horse battery staple"

// runEach runs args(i) for every i in idx at once and returns each one's exit code
// and stderr.
func runEach(idx []int, args func(int) []string) (codes map[int]int, errOut map[int]string) {
	codes, errOut = map[int]int{}, map[int]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range idx {
		wg.Go(func() {
			code, _, e := run(args(i)...)
			mu.Lock()
			codes[i], errOut[i] = code, e
			mu.Unlock()
		})
	}
	wg.Wait()
	return codes, errOut
}

// storedShare returns the share named name in keystore dir, nil if there is none.
func storedShare(t *testing.T, dir, name string) *pairing.Scalar {
	t.Helper()
	ks, err := keystore.OpenFile(dir, []byte(testPassphrase))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ks.Get(context.Background(), name)
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil
		}
		t.Fatal(err)
	}
	s, err := pairing.DecodeScalar(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// combine interpolates s·P1 from the shares of the indices in idx.
func combine(t *testing.T, shares map[uint32]*pairing.Scalar, idx ...uint32) *pairing.G1 {
	t.Helper()
	l, err := pairing.LagrangeCoefficients(idx)
	if err != nil {
		t.Fatal(err)
	}
	s := new(pairing.Scalar)
	for k, i := range idx {
		s.Add(s, new(pairing.Scalar).Mul(l[k], shares[i]))
	}
	return pairing.G1Generator().Mul(s)
}

// reshareWorld is a threshold domain made by dta dkg, in files under dir.
type reshareWorld struct {
	t   *testing.T
	p   func(string, int) string
	dir string
}

func (w *reshareWorld) path(f string) string { return filepath.Join(w.dir, f) }

// dkgDomainOf makes n DTAs, a t-of-n DKG among them and bundle.json (serial 0).
func dkgDomainOf(t *testing.T, n, thr int) *reshareWorld {
	p, dkgArgs := dkgSetup(t, n, thr, "20s")
	w := &reshareWorld{t: t, p: p, dir: filepath.Dir(p("%d", 0))}
	var all []int
	for i := 1; i <= n; i++ {
		all = append(all, i)
	}
	codes, errs := runEach(all, dkgArgs)
	for _, i := range all {
		if codes[i] != 0 {
			t.Fatalf("dta dkg of DTA %d: %s", i, errs[i])
		}
	}
	mustRun(t, "registrar", "keygen", "--out", w.path("registrar.pem"))
	var recs []string
	for _, i := range all {
		recs = append(recs, p("dta-%d.dkg.json", i))
	}
	w.assemble("bundle.json", p("transcript-%d.json", 1), thr, recs, "")
	return w
}

// assemble writes the threshold bundle out from a transcript and records, with
// --successor-of prev unless prev is "".
func (w *reshareWorld) assemble(out, transcript string, thr int, records []string, prev string) *bundle.Bundle {
	t := w.t
	t.Helper()
	args := []string{"bundle", "assemble", "--domain", dkgDomain, "--registrar-key", w.path("registrar.pem"), "--mode", "threshold",
		"--threshold", fmt.Sprint(thr), "--transcript", transcript, "--out", w.path(out), "--replace"}
	if prev != "" {
		args = append(args, "--successor-of", w.path(prev))
	}
	for _, r := range records {
		args = append(args, "--record", r)
	}
	if code, _, errOut := run(args...); code != 0 {
		t.Fatalf("bundle assemble %s: %s", out, errOut)
	}
	raw, _ := os.ReadFile(w.path(out))
	b, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reshare makes a resharing session from the bundle from to the members (index →
// record), with board addresses, and returns dta reshare's arguments for each DTA.
func (w *reshareWorld) reshare(name, from string, thr int, members map[int]string, dealers []int, timeout string) func(int) []string {
	t := w.t
	t.Helper()
	addrs := map[int]string{}
	args := []string{"dkg", "session", "--reshare-from", w.path(from), "--threshold", fmt.Sprint(thr), "--out", w.path(name + ".json")}
	for i, rec := range members {
		addrs[i] = freePort(t)
		args = append(args, "--member", rec+"=http://"+addrs[i])
	}
	records := map[int]string{}
	for i, rec := range members {
		records[i] = rec
	}
	for _, i := range dealers {
		if _, ok := members[i]; !ok {
			addrs[i] = freePort(t)
			args = append(args, "--dealer-url", fmt.Sprintf("%d=http://%s", i, addrs[i]))
			records[i] = w.p("dta-%d.dkg.json", i)
		}
	}
	if code, _, errOut := run(args...); code != 0 {
		t.Fatalf("dkg session --reshare-from: %s", errOut)
	}
	return func(i int) []string {
		return []string{"dta", "reshare", "--keystore-dir", w.p("keys-%d", i), "--session", w.path(name + ".json"),
			"--record", records[i], "--listen", addrs[i], "--start-timeout", timeout, "--round-timeout", timeout,
			"--transcript-out", w.p(name+"-transcript-%d.json", i), "--record-out", w.p(name+"-dta-%d.json", i)}
	}
}

// activate loads b's record of DTA i as the DTA service does (dta.ActivateShare) and
// returns the share it serves.
func (w *reshareWorld) activate(b *bundle.Bundle, i int) *pairing.Scalar {
	w.t.Helper()
	ks, err := keystore.OpenFile(w.p("keys-%d", i), []byte(testPassphrase), keystore.WithScryptWorkFactor(10))
	if err != nil {
		w.t.Fatal(err)
	}
	rec, ok := b.Find(uint32(i))
	if !ok {
		w.t.Fatalf("the bundle has no DTA %d", i)
	}
	s, err := dta.ActivateShare(context.Background(), ks, rec, nil)
	if err != nil {
		w.t.Fatalf("DTA %d: %v", i, err)
	}
	return s
}

// TestReshare: a 3-of-5 domain from dta dkg is reshared to 3 of 4 (DTA 5 retires),
// then to 3 of 5 with a new DTA 6. The new shares stay pending until a DTA loads the
// successor bundle, combine to the same public key, and do not combine with old ones;
// the retired DTA erases its share with dta retire once the successor is out.
func TestReshare(t *testing.T) {
	w := dkgDomainOf(t, 5, 3)
	raw, _ := os.ReadFile(w.path("bundle.json"))
	b0, err := bundle.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	pk, _ := b0.PublicKey()
	old := map[uint32]*pairing.Scalar{}
	for i := 1; i <= 5; i++ {
		old[uint32(i)] = storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare)
	}

	// 3 of 5 → 3 of 4: DTAs 1-4 stay, DTA 5 deals and retires.
	members := map[int]string{}
	for i := 1; i <= 4; i++ {
		members[i] = w.p("dta-%d.dkg.json", i)
	}
	mustRun(t, "dta", "init", "--dkg", "--domain", dkgDomain, "--index", "2", "--url", "https://other.example.net",
		"--keystore-dir", w.path("keys-other"), "--out", w.path("other-2.json"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--member", members[1] + "=http://127.0.0.1:1", "--member", members[2] + "=http://127.0.0.1:2",
			"--member", members[3] + "=http://127.0.0.1:3"}, "old DTA 4 leaves the committee: give the URL of its board with --dealer-url 4=URL"},
		{[]string{"--member", members[1] + "=http://127.0.0.1:1", "--member", w.path("other-2.json") + "=http://127.0.0.1:2",
			"--member", members[3] + "=http://127.0.0.1:3"}, "DTA 2 of the current bundle has another signing key"},
		{[]string{"--member", members[1] + "=http://127.0.0.1:1", "--member", members[2] + "=http://127.0.0.1:2",
			"--member", members[3] + "=http://127.0.0.1:3", "--skip-dealer", "4", "--skip-dealer", "5", "--skip-dealer", "1"},
			"only 2 old DTAs deal; the resharing needs at least the old threshold, 3"},
		{[]string{"--member", members[1] + "=http://127.0.0.1:1", "--member", members[2] + "=http://127.0.0.1:2", "--threshold", "3"},
			"--threshold 3: want 2 to 2"},
	} {
		args := append([]string{"dkg", "session", "--reshare-from", w.path("bundle.json"), "--out", w.path("bad-session.json")}, tc.args...)
		if code, _, errOut := run(args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Fatalf("dkg session %v: exit %d: %s", tc.args, code, errOut)
		}
	}
	args := w.reshare("reshare-a", "bundle.json", 3, members, []int{1, 2, 3, 4, 5}, "20s")
	sess, _ := os.ReadFile(w.path("reshare-a.json"))
	if !bytes.Contains(sess, []byte(`"epoch": 2`)) {
		t.Fatalf("the resharing from serial 0 is not epoch 2:\n%s", sess)
	}
	codes, errs := runEach([]int{1, 2, 3, 4, 5}, args)
	for i := 1; i <= 5; i++ {
		if codes[i] != 0 {
			t.Fatalf("dta reshare of DTA %d: %s", i, errs[i])
		}
	}
	if !strings.Contains(errs[5], "not in the new committee") || !strings.Contains(errs[1], "PENDING") {
		t.Fatalf("dta reshare said\nDTA 1: %s\nDTA 5: %s", errs[1], errs[5])
	}
	// Nothing active changed yet; DTAs 1-4 hold a pending share.
	for i := 1; i <= 5; i++ {
		if a := storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare); !a.Equal(old[uint32(i)]) {
			t.Fatalf("DTA %d: the resharing changed the active share", i)
		}
		if pend := storedShare(t, w.p("keys-%d", i), dta.SecretMasterShareNext); (pend != nil) != (i <= 4) {
			t.Fatalf("DTA %d: pending share %v", i, pend != nil)
		}
	}
	// A second resharing refuses to replace the pending share, unless told to.
	if code, _, errOut := run(args(1)...); code == 0 || !strings.Contains(errOut, "holds the pending share of an earlier resharing") {
		t.Fatalf("dta reshare over a pending share: exit %d: %s", code, errOut)
	}
	// A DTA still on the current bundle serves its old share.
	if s := w.activate(b0, 1); !s.Equal(old[1]) {
		t.Fatal("DTA 1 on the old bundle does not serve its old share")
	}
	var recsA []string
	for i := 1; i <= 4; i++ {
		recsA = append(recsA, w.p("reshare-a-dta-%d.json", i))
	}
	// The key generation's own transcript and records pass every other check of a
	// successor (same key, same DTAs) but are no resharing of the bundle.
	assemble := []string{"bundle", "assemble", "--domain", dkgDomain, "--registrar-key", w.path("registrar.pem"), "--mode", "threshold",
		"--threshold", "3", "--transcript", w.p("transcript-%d.json", 1), "--out", w.path("not-a-successor.json"), "--successor-of", w.path("bundle.json")}
	for i := 1; i <= 5; i++ {
		assemble = append(assemble, "--record", w.p("dta-%d.dkg.json", i))
	}
	if code, _, errOut := run(assemble...); code == 0 || !strings.Contains(errOut, "the transcript is a key generation, not a resharing") {
		t.Fatalf("a successor from the key generation's transcript: exit %d: %s", code, errOut)
	}
	b1 := w.assemble("bundle-1.json", w.p("reshare-a-transcript-%d.json", 2), 3, recsA, "bundle.json")
	if pk1, _ := b1.PublicKey(); !pk1.Equal(pk) {
		t.Fatal("the successor bundle has another public key")
	}
	if err := bundle.CheckSuccessor(b0, b1); err != nil {
		t.Fatal(err)
	}
	sharesA := map[uint32]*pairing.Scalar{}
	for i := 1; i <= 4; i++ {
		sharesA[uint32(i)] = w.activate(b1, i)
		if storedShare(t, w.p("keys-%d", i), dta.SecretMasterShareNext) != nil ||
			!storedShare(t, w.p("keys-%d", i), dta.SecretMasterShare).Equal(sharesA[uint32(i)]) {
			t.Fatalf("DTA %d: the activation did not promote the pending share", i)
		}
		if sharesA[uint32(i)].Equal(old[uint32(i)]) {
			t.Fatalf("DTA %d: the resharing kept the old share", i)
		}
	}
	if !combine(t, sharesA, 1, 2, 4).Equal(pk) || !combine(t, sharesA, 2, 3, 4).Equal(pk) {
		t.Fatal("the new shares do not combine to the public key")
	}
	mixed := map[uint32]*pairing.Scalar{1: old[1], 2: sharesA[2], 3: sharesA[3]}
	if combine(t, mixed, 1, 2, 3).Equal(pk) {
		t.Fatal("an old share combines with new ones")
	}
	// The old bundle no longer loads on DTA 1: its old share is erased.
	ks1, _ := keystore.OpenFile(w.p("keys-%d", 1), []byte(testPassphrase))
	if rec, _ := b0.Find(1); rec != nil {
		if _, err := dta.ActivateShare(context.Background(), ks1, rec, nil); err == nil {
			t.Fatal("DTA 1 still holds its old share after the activation")
		}
	}

	// DTA 5 retires: refused against the old bundle as successor, done with bundle-1.
	retire := func(next string) (int, string) {
		code, _, errOut := run("dta", "retire", "--keystore-dir", w.p("keys-%d", 5), "--record", w.p("dta-%d.dkg.json", 5),
			"--bundle", w.path("bundle.json"), "--successor", w.path(next))
		return code, errOut
	}
	if code, errOut := retire("bundle.json"); code == 0 || !strings.Contains(errOut, "serial") {
		t.Fatalf("dta retire with the same bundle: exit %d: %s", code, errOut)
	}
	if code, errOut := retire("bundle-1.json"); code != 0 || !strings.Contains(errOut, "retired") {
		t.Fatalf("dta retire: exit %d: %s", code, errOut)
	}
	if storedShare(t, w.p("keys-%d", 5), dta.SecretMasterShare) != nil {
		t.Fatal("DTA 5 still holds its share after dta retire")
	}

	// 3 of 4 → 3 of 5: DTAs 1-4 and a new DTA 6.
	mustRun(t, "dta", "init", "--dkg", "--domain", dkgDomain, "--index", "6", "--url", "https://dta6.example.net",
		"--keystore-dir", w.p("keys-%d", 6), "--out", w.p("dta-%d.json", 6))
	members = map[int]string{6: w.p("dta-%d.json", 6)}
	for i := 1; i <= 4; i++ {
		members[i] = w.p("reshare-a-dta-%d.json", i)
	}
	args = w.reshare("reshare-b", "bundle-1.json", 3, members, []int{1, 2, 3, 4}, "20s")
	if sess, _ := os.ReadFile(w.path("reshare-b.json")); !bytes.Contains(sess, []byte(`"epoch": 3`)) {
		t.Fatalf("the resharing from serial 1 is not epoch 3:\n%s", sess)
	}
	codes, errs = runEach([]int{1, 2, 3, 4, 6}, args)
	for _, i := range []int{1, 2, 3, 4, 6} {
		if codes[i] != 0 {
			t.Fatalf("dta reshare (b) of DTA %d: %s", i, errs[i])
		}
	}
	var recsB []string
	for _, i := range []int{1, 2, 3, 4, 6} {
		recsB = append(recsB, w.p("reshare-b-dta-%d.json", i))
	}
	b2 := w.assemble("bundle-2.json", w.p("reshare-b-transcript-%d.json", 6), 3, recsB, "bundle-1.json")
	if b1.Serial != 1 || b2.Serial != 2 {
		t.Fatalf("serials %d, %d", b1.Serial, b2.Serial)
	}
	if err := bundle.CheckSuccessor(b1, b2); err != nil {
		t.Fatal(err)
	}
	sharesB := map[uint32]*pairing.Scalar{}
	for _, i := range []int{1, 2, 3, 4, 6} {
		sharesB[uint32(i)] = w.activate(b2, i)
	}
	if !combine(t, sharesB, 1, 4, 6).Equal(pk) || !combine(t, sharesB, 2, 3, 6).Equal(pk) {
		t.Fatal("the shares of the second resharing do not combine to the public key")
	}
	mixed = map[uint32]*pairing.Scalar{1: sharesA[1], 2: sharesB[2], 6: sharesB[6]}
	if combine(t, mixed, 1, 2, 6).Equal(pk) {
		t.Fatal("a share of the first resharing combines with shares of the second")
	}
}
