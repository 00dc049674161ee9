package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/testdomain"
	"github.com/polyroot/polyroot/ledger"
)

// TestAuditStateBundle: the --state file keeps the trust bundle and the logs audited;
// a later audit takes only that bundle or a successor of it, and a log audited before
// that the bundle no longer names is a problem until --forget-log drops it.
func TestAuditStateBundle(t *testing.T) {
	d := testdomain.New(t, "state.example.com", 3, 0)
	sign := func(b *bundle.Bundle, key ed25519.PrivateKey) ([]byte, *bundle.Bundle) {
		t.Helper()
		file, _, err := bundle.Sign(b, key)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := bundle.Parse(file)
		if err != nil {
			t.Fatal(err)
		}
		return file, parsed
	}
	with := func(serial uint64, change func(*bundle.Bundle)) ([]byte, *bundle.Bundle) {
		b := *d.Bundle
		b.DTAs = slices.Clone(b.DTAs)
		b.Serial = serial
		if change != nil {
			change(&b)
		}
		return sign(&b, d.Registrar)
	}
	const dta2 = "polyroot/state.example.com/dta-2"
	rename := func(b *bundle.Bundle) { b.DTAs[1].LogOrigin = "polyroot/state.example.com/dta-2-new" }
	moved := func(b *bundle.Bundle) { b.DTAs[1].URL = "https://elsewhere.example.com" }
	_, otherRegistrar, _ := ed25519.GenerateKey(rand.Reader)

	// The state of an audit of the bundle of serial 1.
	start := func(t *testing.T) *auditState {
		t.Helper()
		st, err := readAuditState(filepath.Join(t.TempDir(), "none.json"), d.Name)
		if err != nil {
			t.Fatal(err)
		}
		file, b := with(1, nil)
		if gone, err := st.checkBundle(b, file, nil); err != nil || len(gone) != 0 {
			t.Fatalf("first audit: %v, %q", err, gone)
		}
		if st.Bundle == nil || st.Bundle.Serial != 1 || len(st.Logs) != 3 || st.Logs[dta2].SigningKey != d.Bundle.DTAs[1].SigningKey {
			t.Fatalf("state after the first audit: %+v", st)
		}
		st.Checkpoints[dta2] = ledger.SeenCheckpoint{Size: 3, Root: make([]byte, 32)}
		return st
	}
	for _, tc := range []struct {
		name    string
		next    func() ([]byte, *bundle.Bundle)
		forget  []string
		wantErr string
		gone    string // the origin named by the one problem wanted, if any
	}{
		{"ok/same", func() ([]byte, *bundle.Bundle) { return with(1, nil) }, nil, "", ""},
		{"ok/successor", func() ([]byte, *bundle.Bundle) { return with(2, moved) }, nil, "", ""},
		{"fail/renamed-log", func() ([]byte, *bundle.Bundle) { return with(2, rename) }, nil, "", dta2},
		{"ok/renamed-log-forgotten", func() ([]byte, *bundle.Bundle) { return with(2, rename) }, []string{dta2}, "", ""},
		{"fail/same-serial-changed", func() ([]byte, *bundle.Bundle) { return with(1, moved) }, nil, "is neither the one audited last (serial 1", ""},
		{"fail/older", func() ([]byte, *bundle.Bundle) { return with(0, nil) }, nil, "serial 0 is not greater than the pinned serial 1", ""},
		{"fail/other-registrar", func() ([]byte, *bundle.Bundle) {
			b := *d.Bundle
			b.Serial, b.RegistrarKey = 2, hex.EncodeToString(otherRegistrar.Public().(ed25519.PublicKey))
			return sign(&b, otherRegistrar)
		}, nil, "does not verify with the pinned registrar key", ""},
		{"fail/forget-named-log", func() ([]byte, *bundle.Bundle) { return with(2, nil) }, []string{dta2}, "--forget-log " + dta2 + ": the trust bundle still names that log", ""},
		{"fail/forget-unknown-log", func() ([]byte, *bundle.Bundle) { return with(2, nil) }, []string{"polyroot/nowhere"}, "the state has no such log", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := start(t)
			file, b := tc.next()
			gone, err := st.checkBundle(b, file, tc.forget)
			switch {
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			case tc.gone == "" && len(gone) != 0:
				t.Fatalf("problems %q", gone)
			case tc.gone != "" && (len(gone) != 1 || !strings.HasPrefix(gone[0], "log "+tc.gone+" (DTA 2, key ") || !strings.Contains(gone[0], "--forget-log "+tc.gone)):
				t.Fatalf("problems %q, want one for %s", gone, tc.gone)
			}
			if st.Bundle.Serial != b.Serial || st.Bundle.Fingerprint != bundle.Fingerprint(file) {
				t.Fatalf("the bundle audited is not recorded: %+v", st.Bundle)
			}
			_, logged := st.Logs[dta2]
			_, seen := st.Checkpoints[dta2]
			if forgotten := len(tc.forget) > 0; logged == forgotten || seen == forgotten {
				t.Fatalf("forgotten %v, yet logged %v and seen %v", forgotten, logged, seen)
			}
			// The problem stays until the log is forgotten: the state keeps the log.
			if tc.gone != "" {
				again, err := st.checkBundle(b, file, nil)
				if err != nil || len(again) != 1 {
					t.Fatalf("the next audit: %v, %q", err, again)
				}
			}
		})
	}

	// A state file from before the bundle and the logs were kept loads, takes any
	// bundle of the domain, and names a log it has a checkpoint of that the bundle
	// lacks.
	path := filepath.Join(t.TempDir(), "old.json")
	os.WriteFile(path, []byte(`{"version":1,"domain":"state.example.com","checkpoints":{"polyroot/state.example.com/dta-9":{"size":3,"root":"AAAA"}}}`), 0o644)
	st, err := readAuditState(path, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	gone, err := st.checkBundle(d.Bundle, d.BundleFile, nil)
	if err != nil || len(gone) != 1 || !strings.HasPrefix(gone[0], "log polyroot/state.example.com/dta-9, audited before, is not in the trust bundle (serial 0)") {
		t.Fatalf("an old state file: %v, %q", err, gone)
	}
	if err := st.write(path); err != nil {
		t.Fatal(err)
	}
	if st, err = readAuditState(path, d.Name); err != nil || st.Bundle == nil || len(st.Logs) != 3 {
		t.Fatalf("the state written back: %v, %+v", err, st)
	}
}
