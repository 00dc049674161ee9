package cli

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/pairing"
)

// TestBundleAssembleSuccessor: bundle assemble --successor-of gives the bundle the old
// serial + 1 and the old permit period, and refuses (writing nothing) a bundle that is
// no successor: another master public key, another registrar key, another permit
// period, an old file that is not a bundle.
func TestBundleAssembleSuccessor(t *testing.T) {
	const domain = "api.example.com"
	dir := t.TempDir()
	keygen := func(name string) string {
		p := filepath.Join(dir, name)
		if code, _, errOut := run("registrar", "keygen", "--out", p); code != 0 {
			t.Fatal(errOut)
		}
		return p
	}
	reg, otherReg := keygen("registrar.pem"), keygen("other.pem")
	signing := map[uint32]string{}
	// records writes the records of DTAs 1 and 2 with master shares s1, s2.
	records := func(name string, shares ...*pairing.Scalar) []string {
		var args []string
		for i, s := range shares {
			index := uint32(i + 1)
			if signing[index] == "" {
				pub, _, _ := ed25519.GenerateKey(nil)
				signing[index] = hex.EncodeToString(pub)
			}
			rec := bundle.DTA{Index: index, URL: "https://dta" + string(rune('0'+index)) + ".example.net",
				Commitment: hex.EncodeToString(pairing.G1Generator().Mul(s).Bytes()), SigningKey: signing[index],
				LogOrigin: dta.LogOrigin(domain, index)}
			b, _ := json.Marshal(rec)
			p := filepath.Join(dir, name+"-"+string(rune('0'+index))+".json")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			args = append(args, "--record", p)
		}
		return args
	}
	random := func() *pairing.Scalar {
		s, err := pairing.RandomScalar(nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	assemble := func(key, out string, extra ...string) (int, string) {
		args := append([]string{"bundle", "assemble", "--domain", domain, "--registrar-key", key, "--out", filepath.Join(dir, out)}, extra...)
		code, _, errOut := run(args...)
		return code, errOut
	}
	// The first bundle: s = s1 + s2, permit period one hour.
	s1, s2 := random(), random()
	if code, errOut := assemble(reg, "bundle-0.json", append(records("old", s1, s2), "--permit-period", "1h")...); code != 0 {
		t.Fatal(errOut)
	}
	// A resharing: s1 + z, s2 − z.
	z := random()
	reshared := records("new", new(pairing.Scalar).Add(s1, z), new(pairing.Scalar).Sub(s2, z))
	succ := func(old string) []string {
		return append([]string{"--successor-of", filepath.Join(dir, old)}, reshared...)
	}

	t.Run("ok/successor", func(t *testing.T) {
		code, errOut := assemble(reg, "bundle-1.json", succ("bundle-0.json")...)
		if code != 0 || !strings.Contains(errOut, "serial 0 → 1") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		old, _ := os.ReadFile(filepath.Join(dir, "bundle-0.json"))
		raw, _ := os.ReadFile(filepath.Join(dir, "bundle-1.json"))
		ob, _ := bundle.Parse(old)
		b, err := bundle.ParseSuccessor(ob, raw)
		if err != nil || b.Serial != 1 || b.PermitPeriod != 3600 {
			t.Fatalf("got %+v, %v", b, err)
		}
		// And its own successor.
		if code, errOut := assemble(reg, "bundle-2.json", succ("bundle-1.json")...); code != 0 || !strings.Contains(errOut, "serial 1 → 2") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
	for _, tc := range []struct {
		name, key string
		args      []string
		want      string
	}{
		{"fail/other-key", reg, append([]string{"--successor-of", filepath.Join(dir, "bundle-0.json")}, records("evil", random(), random())...), "another master public key"},
		{"fail/other-registrar", otherReg, succ("bundle-0.json"), "another registrar key"},
		{"fail/other-permit-period", reg, append(succ("bundle-0.json"), "--permit-period", "2h"), "permit period 7200, pinned 3600"},
		{"fail/not-a-bundle", reg, append([]string{"--successor-of", filepath.Join(dir, "registrar.pem")}, reshared...), "--successor-of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := strings.ReplaceAll(tc.name, "/", "-") + ".json"
			code, errOut := assemble(tc.key, out, tc.args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if _, err := os.Stat(filepath.Join(dir, out)); err == nil {
				t.Fatal("a bundle was written")
			}
		})
	}
}
