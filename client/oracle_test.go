package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestNoOfflinePINOracle plays a thief who holds everything the client keeps (the
// token file, its seal key included, the pinned bundle) and every public log entry
// of the identity, and colludes with all DTAs but one (n−1 master shares). For each
// candidate PIN it computes the missing DTA's candidate client share, and the candidate
// client key and permit, and looks for them, or their SHA-256, in any encoding, in
// everything it holds. The right PIN must not stand out: nothing it holds may match.
// (With entries that carried SHA-256 of the share, as before, the right PIN matched.)
func TestNoOfflinePINOracle(t *testing.T) {
	e := newEnv(t)
	pin := []byte("4921")
	c := e.enroll(t, "victim@example.com", pin)
	st := c.Status()
	var id pairing.IDHash
	hex.Decode(id[:], []byte(st.IDHash))

	var held [][]byte // every file the client keeps, and every log entry
	files, _ := os.ReadDir(e.dir)
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(e.dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, b)
	}
	c.mu.Lock()
	tk := c.token
	for _, r := range c.state.Receipts {
		held = append(held, r.Entry)
	}
	permits := c.state.Permits
	c.mu.Unlock()
	if len(held) < 3+3 {
		t.Fatalf("the thief holds only %d items", len(held))
	}
	all := bytes.Join(held, []byte("\n"))

	// The colluders' part of the client key and of the current permit.
	a := pairing.IdentityPoint(id)
	slot := e.d.Bundle.PermitPeriod
	slot = pairing.Domain{Name: e.d.Name, PermitPeriod: slot}.Slot(e.serverNow())
	tPoint := pairing.PermitPoint(id, slot, e.d.Bundle.PermitPeriod)
	var colludersA, colludersT *pairing.G1
	for _, d := range e.d.DTAs[:len(e.d.DTAs)-1] {
		raw, err := d.Keys.Get(context.Background(), dta.SecretMasterShare)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pairing.DecodeScalar(raw)
		if err != nil {
			t.Fatal(err)
		}
		sa, stk := a.Mul(s), tPoint.Mul(s)
		if colludersA == nil {
			colludersA, colludersT = sa, stk
		} else {
			colludersA, colludersT = colludersA.Add(sa), colludersT.Add(stk)
		}
	}
	permit, err := pairing.DecodeG1(permits[slot])
	if err != nil {
		t.Fatal(err)
	}
	missingPermit := permit.Sub(colludersT) // the honest DTA's permit share (the file keeps only the sum)
	found := func(p *pairing.G1) bool {
		enc := p.Bytes()
		h := sha256.Sum256(enc)
		for _, form := range [][]byte{enc, h[:]} {
			for _, f := range [][]byte{form, []byte(hex.EncodeToString(form)), []byte(base64.StdEncoding.EncodeToString(form)),
				[]byte(base64.RawURLEncoding.EncodeToString(form))} {
				if bytes.Contains(all, f) {
					return true
				}
			}
		}
		return false
	}
	if found(missingPermit) {
		t.Fatal("the thief's files name a DTA's permit share: a sign that shares leak")
	}
	for _, guess := range []string{"0000", "1234", "4921", "9999"} {
		sA := tk.Add(a.Mul(pairing.PINScalar(e.d.Name, id, []byte(guess))))
		missing := sA.Sub(colludersA)
		if found(sA) || found(missing) {
			t.Fatalf("PIN %s can be tested offline: a candidate share or key matches what the thief holds", guess)
		}
	}
	// The entries still describe the issuance: the subject names the identity for an
	// owner who knows the idhash, and nothing else in them depends on a share.
	for _, r := range c.state.Receipts {
		en, err := wire.ParseEntry(r.Entry)
		if err != nil || en.Subject != wire.Subject(id) || en.SealedSHA256 == "" {
			t.Fatalf("entry %s: %v", r.Entry, err)
		}
	}
}
