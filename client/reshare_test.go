package client

import (
	"context"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/pairing"
)

// TestReshareOverHTTPLogin: a client enrolled in a 3-of-5 domain keeps getting permits
// and logging in across two real resharings (dkgnet among the running DTAs, each
// loading the registrar's successor bundle as on SIGHUP, the auth server reloading
// it): 3 of 5 with fresh shares, then 3 of 4 with DTA 5 retired. The DTAs' old shares
// are erased, and a share from before does not combine with shares from after.
func TestReshareOverHTTPLogin(t *testing.T) {
	ctx := context.Background()
	pin := []byte("4921")
	d := testdomain.NewThreshold(t, testDomainName, 3, 5, testPeriod)
	se := newSuccessorEnv(t, d)
	se.enroll(t, "alice@example.com", pin)
	pk, _ := d.Bundle.PublicKey()
	share := func(x *testdomain.DTA) *pairing.Scalar {
		raw, err := x.Keys.Get(ctx, dta.SecretMasterShare)
		if err != nil {
			t.Fatal(err)
		}
		s, err := pairing.DecodeScalar(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := x.Keys.Get(ctx, dta.SecretMasterShareNext); err == nil {
			t.Fatalf("DTA %d still holds a pending share", x.Index)
		}
		return s
	}
	before := map[uint32]*pairing.Scalar{}
	for _, x := range d.DTAs {
		before[x.Index] = share(x)
	}
	c := se.open(t, WithNow(later))
	for k, retire := range [][]uint32{nil, {5}} {
		d.ReshareOverHTTP(3, retire...)
		if err := se.srv.ReloadBundle(d.BundleFile); err != nil {
			t.Fatal(err)
		}
		if pk2, _ := d.Bundle.PublicKey(); !pk2.Equal(pk) || d.Bundle.Serial != uint64(k+1) || len(d.Bundle.DTAs) != 5-k {
			t.Fatalf("resharing %d: serial %d, %d DTAs, same key %v", k+1, d.Bundle.Serial, len(d.Bundle.DTAs), pk2.Equal(pk))
		}
		se.setServerClock(tenPeriods)
		if err := c.RenewPermits(ctx, se.url, pin, 2); err != nil {
			t.Fatalf("permits after resharing %d: %v", k+1, err)
		}
		if c.Fingerprint() != d.Fingerprint {
			t.Fatalf("resharing %d: the client did not adopt the successor", k+1)
		}
		if s, err := c.Login(ctx, se.url, pin); err != nil || s.ID != "alice@example.com" {
			t.Fatalf("login after resharing %d: %v", k+1, err)
		}
	}
	after := map[uint32]*pairing.Scalar{}
	for _, x := range d.DTAs {
		if after[x.Index] = share(x); after[x.Index].Equal(before[x.Index]) {
			t.Fatalf("DTA %d still holds its share from before", x.Index)
		}
	}
	combine := func(s map[uint32]*pairing.Scalar, idx ...uint32) *pairing.G1 {
		l, _ := pairing.LagrangeCoefficients(idx)
		sum := new(pairing.Scalar)
		for k, i := range idx {
			sum.Add(sum, new(pairing.Scalar).Mul(l[k], s[i]))
		}
		return pairing.G1Generator().Mul(sum)
	}
	if !combine(after, 1, 2, 4).Equal(pk) {
		t.Fatal("the shares after the resharings do not combine to the public key")
	}
	if combine(map[uint32]*pairing.Scalar{1: before[1], 2: after[2], 4: after[4]}, 1, 2, 4).Equal(pk) {
		t.Fatal("a share from before combines with shares from after")
	}
}
