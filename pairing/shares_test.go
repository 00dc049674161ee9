package pairing

import (
	"errors"
	"slices"
	"testing"
)

// subsets returns every k-element subset of {1..n}.
func subsets(n, k int) [][]uint32 {
	var out [][]uint32
	var rec func(start int, cur []uint32)
	rec = func(start int, cur []uint32) {
		if len(cur) == k {
			out = append(out, slices.Clone(cur))
			return
		}
		for i := start; i <= n; i++ {
			rec(i+1, append(cur, uint32(i)))
		}
	}
	rec(1, nil)
	return out
}

func TestThresholdMatchesAdditiveReference(t *testing.T) {
	const tt, n = 3, 5
	s, _ := RandomScalar(nil)
	shares, err := SplitSecret(nil, s, tt, n)
	if err != nil {
		t.Fatal(err)
	}
	a := HashToG1([]byte("some identity"), []byte(DSTIdentity))
	wantG1, wantG2 := a.Mul(s), G2Generator().Mul(s)
	for _, set := range append(subsets(n, tt), subsets(n, n)...) {
		var g1 []*G1
		var g2 []*G2
		for _, i := range set {
			g1 = append(g1, a.Mul(shares[i-1]))
			g2 = append(g2, G2Generator().Mul(shares[i-1]))
		}
		gotG1, err := Combine(Threshold, set, g1)
		if err != nil {
			t.Fatal(err)
		}
		gotG2, err := Combine(Threshold, set, g2)
		if err != nil {
			t.Fatal(err)
		}
		if !gotG1.Equal(wantG1) || !gotG2.Equal(wantG2) {
			t.Fatalf("subset %v does not give s·A and s·Q", set)
		}
	}
	// Fewer than t shares give a different key.
	for _, set := range subsets(n, tt-1) {
		var g1 []*G1
		for _, i := range set {
			g1 = append(g1, a.Mul(shares[i-1]))
		}
		got, err := Combine(Threshold, set, g1)
		if err != nil {
			t.Fatal(err)
		}
		if got.Equal(wantG1) {
			t.Fatalf("subset %v of size t-1 recovered the key", set)
		}
	}
}

func TestAdditiveCombination(t *testing.T) {
	a := HashToG1([]byte("x"), []byte(DSTIdentity))
	s1, _ := RandomScalar(nil)
	s2, _ := RandomScalar(nil)
	got, err := Combine(Additive, []uint32{1, 2}, []*G1{a.Mul(s1), a.Mul(s2)})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(a.Mul(new(Scalar).Add(s1, s2))) {
		t.Fatal("additive combination is not (s1+s2)·A")
	}
}

func TestCombineRejects(t *testing.T) {
	a := HashToG1([]byte("x"), []byte(DSTIdentity))
	cases := []struct {
		name    string
		mode    Mode
		indices []uint32
		shares  []*G1
		want    error
	}{
		{"fail/no-shares", Additive, nil, nil, ErrShareSet},
		{"fail/count-mismatch", Additive, []uint32{1, 2}, []*G1{a}, ErrShareSet},
		{"fail/zero-index", Threshold, []uint32{0, 1}, []*G1{a, a}, ErrShareSet},
		{"fail/repeated-index", Threshold, []uint32{2, 2}, []*G1{a, a}, ErrShareSet},
		{"fail/identity-share", Additive, []uint32{1, 2}, []*G1{a, identityG1()}, ErrIdentity},
		{"fail/unknown-mode", Mode(9), []uint32{1}, []*G1{a}, ErrShareSet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Combine(tc.mode, tc.indices, tc.shares); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := SplitSecret(nil, NewScalar(1), 3, 2); !errors.Is(err, ErrShareSet) {
		t.Fatalf("SplitSecret 3 of 2: %v", err)
	}
}

func TestDLEQ(t *testing.T) {
	const domain = "api.example.com"
	a := HashToG1([]byte("id"), []byte(DSTIdentity))
	var issued []IssuedShare
	masters := make([]*Scalar, 4)
	for i := range masters {
		masters[i], _ = RandomScalar(nil)
		idx := uint32(i + 1)
		c := G1Generator().Mul(masters[i])
		S, p, err := IssueShare(nil, masters[i], c, a, ShareContext(domain, idx, "client", 0))
		if err != nil {
			t.Fatal(err)
		}
		issued = append(issued, IssuedShare{Index: idx, Commitment: c, Share: S, Proof: p})
	}
	ctx := func(i uint32) []byte { return ShareContext(domain, i, "client", 0) }
	if err := VerifyShares(a, issued, ctx); err != nil {
		t.Fatal(err)
	}

	// DTA 2 answers with a share made from a different master share (with a valid
	// proof for that other share), DTA 4 with a proof for another context.
	rogue, _ := RandomScalar(nil)
	S, p, err := IssueShare(nil, rogue, G1Generator().Mul(rogue), a, ctx(2))
	if err != nil {
		t.Fatal(err)
	}
	issued[1].Share, issued[1].Proof = S, p
	_, p4, err := IssueShare(nil, masters[3], issued[3].Commitment, a, ShareContext(domain, 4, "permit", 7))
	if err != nil {
		t.Fatal(err)
	}
	issued[3].Proof = p4
	err = VerifyShares(a, issued, ctx)
	var se *ShareError
	if !errors.As(err, &se) || !slices.Equal(se.Indices, []uint32{2, 4}) || !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("got %v, want DTAs [2 4] named", err)
	}

	t.Run("fail/proof-for-other-base", func(t *testing.T) {
		other := HashToG1([]byte("other id"), []byte(DSTIdentity))
		if err := issued[0].Proof.Verify(issued[0].Commitment, other, issued[0].Share, ctx(1)); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ok/encoding-round-trip", func(t *testing.T) {
		q, err := DecodeDLEQProof(issued[0].Proof.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Verify(issued[0].Commitment, a, issued[0].Share, ctx(1)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/zero-master-share", func(t *testing.T) {
		if _, _, err := IssueShare(nil, new(Scalar), G1Generator(), a, ctx(1)); !errors.Is(err, ErrZeroScalar) {
			t.Fatalf("got %v", err)
		}
	})
}
