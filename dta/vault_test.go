package dta

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/testbin"
	"github.com/polyroot/polyroot/internal/ticket"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// TestVaultKeystoreAndRotation runs a DTA whose keys live in a real Vault server: it
// issues, then the operator rotates the master share in Vault and hands the DTA a new
// bundle; Reload refuses a bundle that does not match and takes the one that does.
func TestVaultKeystoreAndRotation(t *testing.T) {
	ctx := context.Background()
	v := testbin.StartVault(t)
	ks, err := keystore.NewVault(ctx, keystore.VaultConfig{Address: v.Addr, CAFile: v.CAFile, Token: v.RootToken, Path: "polyroot/dta-1"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := Init(ctx, ks, testDomain, 1, "http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Init(ctx, ks, testDomain, 1, "http://127.0.0.1:1"); err == nil {
		t.Fatal("Init overwrote the keys in Vault")
	}
	regPub, regPriv, _ := ed25519.GenerateKey(nil)
	peer := absentPeer(t, 2)
	sign := func(r bundle.DTA) *bundle.Bundle {
		file, _, err := bundle.Sign(&bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: testDomain, Mode: "additive",
			Threshold: 2, PermitPeriod: 3600, RegistrarKey: hex.EncodeToString(regPub), DTAs: []bundle.DTA{r, peer}}, regPriv)
		if err != nil {
			t.Fatal(err)
		}
		b, err := bundle.Parse(file)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	b1 := sign(*rec)
	svc, err := New(ctx, Config{Bundle: b1, Index: 1, Keys: ks, DataDir: filepath.Join(t.TempDir(), "data"), Log: logOptions})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	d := &domain{t: t, bundle: b1, registrar: regPriv, now: time.Now()}
	nd := &node{index: 1, url: srv.URL}

	id := newID(t, "grace@example.com")
	before := d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, id))
	d.checkShares([]*wire.DTAResponse{before}, pairing.IdentityPoint(id), "client", 0, id)

	// Rotation: a new master share in Vault, then a new bundle with its commitment.
	s2, _ := pairing.RandomScalar(nil)
	if err := ks.Put(ctx, SecretMasterShare, s2.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload(ctx, b1); err == nil {
		t.Fatal("Reload took a master share that does not match the bundle")
	}
	if got := d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, id)); !equalShares(t, got, before) {
		t.Fatal("a refused reload changed the share")
	}
	rec2 := *rec
	rec2.Commitment = hex.EncodeToString(pairing.G1Generator().Mul(s2).Bytes())
	b2 := sign(rec2)
	if err := svc.Reload(ctx, b2); err != nil {
		t.Fatal(err)
	}
	d.bundle = b2
	after := d.issue(nd, "/v1/shares/client", d.ticket(ticket.KindClient, id))
	d.checkShares([]*wire.DTAResponse{after}, pairing.IdentityPoint(id), "client", 0, id) // proofs against the new C_1
	if equalShares(t, after, before) || after.Shares[0].Promise.Index <= before.Shares[0].Promise.Index {
		t.Fatal("after rotation the DTA issued the old share, or the log did not go on")
	}
	resp, err := http.Get(srv.URL + "/v1/record")
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(err)
	}
	resp.Body.Close()
	if svc.Record().Commitment != rec2.Commitment {
		t.Fatal("the record still shows the old commitment")
	}
}

func equalShares(t *testing.T, a, b *wire.DTAResponse) bool {
	return bytes.Equal(openShare(t, &a.Shares[0])[:pairing.G1Size], openShare(t, &b.Shares[0])[:pairing.G1Size])
}
