package dta

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/pairing"
)

// TestActivateShare walks the states a resharing and its activation (or a crash in
// the middle of it) leave in a keystore: the bundle's commitment picks the share.
func TestActivateShare(t *testing.T) {
	ctx := context.Background()
	oldS, newS := pairing.NewScalar(11), pairing.NewScalar(22)
	rec := func(s *pairing.Scalar) *bundle.DTA {
		return &bundle.DTA{Index: 2, Commitment: hex.EncodeToString(pairing.G1Generator().Mul(s).PublicForm().Bytes())}
	}
	get := func(ks keystore.Keystore, name string) *pairing.Scalar {
		s, err := readShare(ctx, ks, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name            string
		active, pending *pairing.Scalar
		bundle          *pairing.Scalar
		want            *pairing.Scalar // nil: an error
		wantPending     *pairing.Scalar
	}{
		{"old bundle, resharing not adopted", oldS, newS, oldS, oldS, newS},
		{"new bundle promotes", oldS, newS, newS, newS, nil},
		{"crash after delete of the old", nil, newS, newS, newS, nil},
		{"crash after put of the new", newS, newS, newS, newS, nil},
		{"new DTA, first start", nil, newS, newS, newS, nil},
		{"neither matches", oldS, newS, pairing.NewScalar(33), nil, newS},
		{"no share", nil, nil, oldS, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := keystore.OpenFile(filepath.Join(t.TempDir(), "keys"), []byte("test passphrase"), keystore.WithScryptWorkFactor(10))
			if err != nil {
				t.Fatal(err)
			}
			for name, s := range map[string]*pairing.Scalar{SecretMasterShare: tc.active, SecretMasterShareNext: tc.pending} {
				if s != nil {
					if err := ks.Put(ctx, name, s.Bytes()); err != nil {
						t.Fatal(err)
					}
				}
			}
			got, err := ActivateShare(ctx, ks, rec(tc.bundle), nil)
			if tc.want == nil {
				if err == nil || (tc.active == nil && !errors.Is(err, keystore.ErrNotFound)) ||
					(tc.active != nil && !strings.Contains(err.Error(), "match commitment C_2")) {
					t.Fatalf("err %v", err)
				}
				if a := get(ks, SecretMasterShare); (a == nil) != (tc.active == nil) || a != nil && !a.Equal(tc.active) {
					t.Fatal("a failed activation changed the active share")
				}
			} else {
				if err != nil || !got.Equal(tc.want) {
					t.Fatalf("got a share %v, err %v", got != nil, err)
				}
				if a := get(ks, SecretMasterShare); a == nil || !a.Equal(tc.want) {
					t.Fatal("the keystore's active share is not the bundle's")
				}
			}
			p := get(ks, SecretMasterShareNext)
			if (p == nil) != (tc.wantPending == nil) || p != nil && !p.Equal(tc.wantPending) {
				t.Fatalf("pending share left: %v, want %v", p != nil, tc.wantPending != nil)
			}
		})
	}
}
