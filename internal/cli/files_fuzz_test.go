package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/dta"
	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/ledger"
)

// fuzzRecords returns a DTA record as `dta init` prints it and one as `dta init
// --dkg` prints it, of DTA 1 of domain, for seeds.
func fuzzRecords(f *testing.F, domain string) (full, dkg []byte) {
	for i, init := range []func(context.Context, keystore.Keystore, string, uint32, string) (*bundle.DTA, error){dta.Init, dta.InitForDKG} {
		ks, err := keystore.OpenFile(filepath.Join(f.TempDir(), "keys"), []byte("fuzz"), keystore.WithScryptWorkFactor(1))
		if err != nil {
			f.Fatal(err)
		}
		rec, err := init(context.Background(), ks, domain, 1, "https://dta1.example.com")
		if err != nil {
			f.Fatal(err)
		}
		b, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			f.Fatal(err)
		}
		if i == 0 {
			full = b
		} else {
			dkg = b
		}
	}
	return full, dkg
}

// FuzzDTARecord: a DTA record handed to the registrar (bundle build, dkg) either is
// refused or is a record of this domain that, written out again, reads the same, by
// both readers.
func FuzzDTARecord(f *testing.F) {
	const domain = "fuzz.example.com"
	full, dkg := fuzzRecords(f, domain)
	f.Add(full, false)
	f.Add(dkg, true)
	f.Add(full, true)
	f.Add(dkg, false)
	f.Add(append(bytes.Clone(full), " {}"...), false)
	f.Add(bytes.Replace(full, []byte(`"index": 1`), []byte(`"index": 4294967296`), 1), false)
	f.Add([]byte(`{"index":1,"unknown":true}`), true)
	f.Add([]byte(`null`), true)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte, forDKG bool) {
		read := readRecord
		if forDKG {
			read = readDKGRecord
		}
		path := filepath.Join(dir, "record.json")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, err := read(path, domain)
		if err != nil {
			if rec != nil {
				t.Fatal("an error and a record")
			}
			if !strings.Contains(err.Error(), "record") {
				t.Fatalf("an error that does not say which file: %v", err)
			}
			return
		}
		if rec.Index == 0 || rec.LogOrigin != dta.LogOrigin(domain, rec.Index) {
			t.Fatalf("accepted %+v", rec)
		}
		if _, err := rec.PublicKey(); err != nil {
			t.Fatalf("accepted a record without a key: %v", err)
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, again, 0o600); err != nil {
			t.Fatal(err)
		}
		rec2, err := read(path, domain)
		if err != nil || !reflect.DeepEqual(rec, rec2) {
			t.Fatalf("the record changed on a round trip: %+v, %+v (%v)", rec, rec2, err)
		}
	})
}

// FuzzAuditState: an audit --state file (an auditor's memory, which may be restored
// from anywhere) either is refused or holds checkpoints that, written out again, read
// the same.
func FuzzAuditState(f *testing.F) {
	const domain = "fuzz.example.com"
	good, _ := json.Marshal(auditState{Version: auditStateVersion, Domain: domain,
		Checkpoints: map[string]ledger.SeenCheckpoint{"fuzz.example.com/dta/1": {Size: 9, Root: bytes.Repeat([]byte{1}, 32)}}})
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1))
	f.Add(bytes.Replace(good, []byte(domain), []byte("other.example.com"), 1))
	f.Add([]byte(`{"version":1,"domain":"fuzz.example.com","checkpoints":null}`))
	f.Add([]byte(`{"version":1,"domain":"fuzz.example.com","checkpoints":{"o":{"size":-1}}}`))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "state.json")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := readAuditState(path, domain)
		if err != nil {
			if st != nil {
				t.Fatal("an error and a state")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		if st.Version != auditStateVersion || st.Domain != domain || st.Checkpoints == nil {
			t.Fatalf("read %+v", st)
		}
		if err := st.write(path); err != nil {
			t.Fatal(err)
		}
		st2, err := readAuditState(path, domain)
		if err != nil {
			t.Fatalf("a state written out again does not read: %v", err)
		}
		a, _ := json.Marshal(st)
		b, _ := json.Marshal(st2)
		if !bytes.Equal(a, b) {
			t.Fatalf("the state changed on a round trip:\n%s\n%s", a, b)
		}
	})
}

// FuzzConfigFile: a --config file (of a DTA or of the auth server) either is refused
// with an error that names it, or every setting it holds can be looked up as flag
// text, without a panic.
func FuzzConfigFile(f *testing.F) {
	ex, err := filepath.Abs(filepath.Join("..", "..", "deploy", "examples"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"dta-1.toml", "server.toml"} {
		raw, err := os.ReadFile(filepath.Join(ex, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, name == "server.toml")
	}
	f.Add([]byte("listen = 8441\n"), false)
	f.Add([]byte("bundle = \"b.json\"\nunknown = 1\n"), false)
	f.Add([]byte("[keystore]\ntype = \"file\"\ndir = \"keys\"\n[keystore.vault]\naddr = \"https://v\"\n"), false)
	f.Add([]byte("[[oidc.clients]]\nid = \"shop\"\n"), true)
	f.Add([]byte("a = [1, 2]\n"), true)
	f.Add([]byte("x = \"\n"), false)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte, server bool) {
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		c := &configFile{path: path}
		if server {
			c.kind = "server"
		}
		if err := c.load(); err != nil {
			if !strings.HasPrefix(err.Error(), "config file "+path) {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		for _, k := range c.keys() {
			v, ok := c.lookup(k)
			if !ok {
				t.Fatalf("key %q is in the file but cannot be looked up", k)
			}
			if pathKeys[k] && v != "" && !filepath.IsAbs(v) {
				t.Fatalf("path %q of key %q is not resolved against the file's directory", v, k)
			}
		}
	})
}
