package dta

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/polyroot/polyroot/internal/bundle"
	"github.com/polyroot/polyroot/internal/keystore"
	"github.com/polyroot/polyroot/internal/wire"
	"github.com/polyroot/polyroot/pairing"
)

// logEntries reads every entry of the service's log.
func logEntries(t *testing.T, svc *Service) []*wire.Entry {
	t.Helper()
	ctx := context.Background()
	size, err := svc.log.Size(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*wire.Entry
	err = svc.log.ScanLeaves(ctx, 0, size, func(_ uint64, leaf []byte) error {
		e, err := wire.ParseEntry(leaf)
		if err != nil {
			return err
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// keyEntries returns the key entries of the log, checking they are all of DTA 1.
func keyEntries(t *testing.T, svc *Service) []*wire.Entry {
	t.Helper()
	var out []*wire.Entry
	for _, e := range logEntries(t, svc) {
		if e.Kind == wire.KindKey {
			if e.DTA != 1 || e.Domain != testDomain {
				t.Fatalf("key entry of DTA %d of %s", e.DTA, e.Domain)
			}
			out = append(out, e)
		}
	}
	return out
}

func transcriptHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// keyedDTA1 makes DTA 1 of testDomain, its keys in a keystore under dir, and returns
// them with sign, which signs a threshold bundle naming dta1 (t = n = 2, DTA 2 never
// running: any two shares make a valid threshold bundle, no polynomial to check) with
// serial and transcript.
func keyedDTA1(t *testing.T, dir string) (ks *keystore.File, rec *bundle.DTA, sign func(serial uint64, transcript string, dta1 bundle.DTA) *bundle.Bundle) {
	t.Helper()
	ks, err := keystore.OpenFile(filepath.Join(dir, "keys"), []byte("test passphrase"), keystore.WithScryptWorkFactor(10))
	if err != nil {
		t.Fatal(err)
	}
	if rec, err = Init(context.Background(), ks, testDomain, 1, "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	regPub, regPriv, _ := ed25519.GenerateKey(nil)
	peer := absentPeer(t, 2)
	return ks, rec, func(serial uint64, transcript string, dta1 bundle.DTA) *bundle.Bundle {
		b := &bundle.Bundle{Version: 1, Protocol: pairing.ProtocolVersion, Domain: testDomain, Mode: "threshold",
			Threshold: 2, RegistrarKey: hex.EncodeToString(regPub), Serial: serial, TranscriptSHA256: transcript,
			DTAs: []bundle.DTA{dta1, peer}}
		if _, _, err := bundle.Sign(b, regPriv); err != nil {
			t.Fatal(err)
		}
		return b
	}
}

// TestKeyEntry: a DTA started under a threshold bundle that names a transcript logs
// one key entry (serial, transcript hash, its C_i) before it serves; a restart under
// the same bundle logs none; a reload to a successor sharing (a pending share from a
// resharing) logs one naming the new serial, transcript and commitment, once; a bundle
// without a transcript logs none.
func TestKeyEntry(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks, rec, sign := keyedDTA1(t, dir)
	start := func(b *bundle.Bundle) *Service {
		svc, err := New(ctx, Config{Bundle: b, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
		if err != nil {
			t.Fatal(err)
		}
		return svc
	}
	check := func(e *wire.Entry, serial uint64, transcript, commitment string) {
		t.Helper()
		if e.Serial != serial || e.TranscriptSHA256 != transcript || e.Commitment != commitment ||
			e.TicketSHA256 != "" || e.Subject != "" || e.Time <= 0 {
			t.Fatalf("key entry %+v, want serial %d transcript %.8s… commitment %.8s…", e, serial, transcript, commitment)
		}
	}

	// No transcript: nothing logged.
	svc := start(sign(0, "", *rec))
	if n := len(logEntries(t, svc)); n != 0 {
		t.Fatalf("a bundle without a transcript: %d entries", n)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}

	t1 := transcriptHash("transcript of the key generation")
	b1 := sign(0, t1, *rec)
	svc = start(b1)
	keys := keyEntries(t, svc)
	if len(keys) != 1 {
		t.Fatalf("%d key entries after the first start, want 1", len(keys))
	}
	check(keys[0], 0, t1, rec.Commitment)
	if err := svc.Reload(ctx, b1); err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	svc = start(b1)
	if n := len(keyEntries(t, svc)); n != 1 {
		t.Fatalf("%d key entries after a restart under the same bundle, want 1", n)
	}

	// A resharing left a pending share; its successor bundle activates it.
	next, _ := pairing.RandomScalar(nil)
	if err := ks.Put(ctx, SecretMasterShareNext, next.Bytes()); err != nil {
		t.Fatal(err)
	}
	rec2 := *rec
	rec2.Commitment = hex.EncodeToString(pairing.G1Generator().Mul(next).Bytes())
	t2 := transcriptHash("transcript of the resharing")
	b2 := sign(1, t2, rec2)
	for range 2 {
		if err := svc.Reload(ctx, b2); err != nil {
			t.Fatal(err)
		}
	}
	keys = keyEntries(t, svc)
	if len(keys) != 2 {
		t.Fatalf("%d key entries after the reload to the successor, want 2", len(keys))
	}
	check(keys[1], 1, t2, rec2.Commitment)
	if svc.Record().Commitment != rec2.Commitment {
		t.Fatal("the reload did not take the successor bundle")
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	svc = start(b2)
	defer svc.Close(ctx)
	if n := len(keyEntries(t, svc)); n != 2 {
		t.Fatalf("%d key entries after a restart under the successor, want 2", n)
	}
}

// TestKeyEntryRecovered: a key entry's record written pending, its append lost in a
// crash, is appended by recovery at the next start, once.
func TestKeyEntryRecovered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks, rec, sign := keyedDTA1(t, dir)
	tr := transcriptHash("transcript")
	b := sign(4, tr, *rec)
	// The state a crash after the pending record and before the append leaves.
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := wire.Entry{Version: wire.EntryVersion, DTA: 1, Domain: testDomain, Kind: wire.KindKey, Serial: 4,
		TranscriptSHA256: tr, Commitment: rec.Commitment, Time: 1_700_000_000}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.put(keyNonce(4, tr, rec.Commitment), &record{Kind: wire.KindKey, Entries: [][]byte{leaf}, Slots: []uint64{0}}, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		svc, err := New(ctx, Config{Bundle: b, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
		if err != nil {
			t.Fatal(err)
		}
		keys := keyEntries(t, svc)
		if err := svc.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || *keys[0] != e {
			t.Fatalf("key entries %+v, want the recovered one only", keys)
		}
	}
}

// TestKeyEntryPendingAtReload: a reload whose key entry is recorded but not appended
// (an append that failed in this process) fails and keeps the current bundle; a
// restart under the new bundle appends the entry (recovery) and serves it.
func TestKeyEntryPendingAtReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks, rec, sign := keyedDTA1(t, dir)
	b1, b2 := sign(1, transcriptHash("one"), *rec), sign(2, transcriptHash("two"), *rec)
	svc, err := New(ctx, Config{Bundle: b1, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
	if err != nil {
		t.Fatal(err)
	}
	e := wire.Entry{Version: wire.EntryVersion, DTA: 1, Domain: testDomain, Kind: wire.KindKey, Serial: 2,
		TranscriptSHA256: b2.TranscriptSHA256, Commitment: rec.Commitment, Time: 1_700_000_000}
	leaf, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	size := svc.logSize.Load()
	if err := svc.store.put(keyNonce(2, b2.TranscriptSHA256, rec.Commitment), &record{Kind: wire.KindKey, Entries: [][]byte{leaf}, Slots: []uint64{0}, SizeHint: size}, ""); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload(ctx, b2); !errors.Is(err, errKeyPending) {
		t.Fatalf("reload with a pending key entry: %v", err)
	}
	if svc.keys.Load().bundle != b1 || len(keyEntries(t, svc)) != 1 {
		t.Fatal("a failed reload changed the bundle or the log")
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	svc, err = New(ctx, Config{Bundle: b2, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close(ctx)
	keys := keyEntries(t, svc)
	if len(keys) != 2 || *keys[1] != e || keys[0].Serial != 1 {
		t.Fatalf("key entries %+v, want serial 1's and the recovered serial 2's", keys)
	}
}

// TestReloadFailureKeepsOldShare: a reload to a resharing's successor bundle whose key
// entry cannot be logged (here recorded but not appended, as after a failed append)
// fails and leaves the keystore as it was: the old share active, the new one pending.
// A restart under the current bundle then works; a reload that succeeds activates the
// new share and erases the old one.
func TestReloadFailureKeepsOldShare(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ks, rec, sign := keyedDTA1(t, dir)
	old, err := readShare(ctx, ks, SecretMasterShare)
	if err != nil {
		t.Fatal(err)
	}
	next, _ := pairing.RandomScalar(nil)
	if err := ks.Put(ctx, SecretMasterShareNext, next.Bytes()); err != nil {
		t.Fatal(err)
	}
	rec2 := *rec
	rec2.Commitment = hex.EncodeToString(pairing.G1Generator().Mul(next).Bytes())
	b1, b2 := sign(1, transcriptHash("key generation"), *rec), sign(2, transcriptHash("resharing"), rec2)
	shares := func() (active, pending *pairing.Scalar) {
		t.Helper()
		active, err := readShare(ctx, ks, SecretMasterShare)
		if err != nil {
			t.Fatal(err)
		}
		pending, err = readShare(ctx, ks, SecretMasterShareNext)
		if err != nil {
			t.Fatal(err)
		}
		return active, pending
	}

	svc, err := New(ctx, Config{Bundle: b1, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := (&wire.Entry{Version: wire.EntryVersion, DTA: 1, Domain: testDomain, Kind: wire.KindKey, Serial: 2,
		TranscriptSHA256: b2.TranscriptSHA256, Commitment: rec2.Commitment, Time: 1_700_000_000}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	pendingKey := &record{Kind: wire.KindKey, Entries: [][]byte{leaf}, Slots: []uint64{0}, SizeHint: svc.logSize.Load()}
	if err := svc.store.put(keyNonce(2, b2.TranscriptSHA256, rec2.Commitment), pendingKey, ""); err != nil {
		t.Fatal(err)
	}
	if err := svc.Reload(ctx, b2); !errors.Is(err, errKeyPending) {
		t.Fatalf("reload with its key entry not logged: %v", err)
	}
	if active, pending := shares(); active == nil || !active.Equal(old) || pending == nil || !pending.Equal(next) {
		t.Fatal("a failed reload changed the keystore's shares")
	}
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// The restart recovers the pending key entry; the current bundle still loads.
	svc, err = New(ctx, Config{Bundle: b1, Index: 1, Keys: ks, DataDir: dir, Log: logOptions})
	if err != nil {
		t.Fatalf("restart under the current bundle after a failed reload: %v", err)
	}
	defer svc.Close(ctx)
	if err := svc.Reload(ctx, b2); err != nil {
		t.Fatal(err)
	}
	if active, pending := shares(); active == nil || !active.Equal(next) || pending != nil {
		t.Fatal("a successful reload did not activate the new share")
	}
}
