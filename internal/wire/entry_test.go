package wire

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

var h32 = strings.Repeat("0f", 32)

// c48 stands for a commitment C_i: the entry checks its form, not the point.
var c48 = "a" + strings.Repeat("0e", 47) + "f"

func TestEntry(t *testing.T) {
	ok := []Entry{
		{Version: EntryVersion, DTA: 1, Domain: "d", Kind: KindClient, Subject: h32, SealedSHA256: h32, TicketSHA256: h32, Time: 1},
		{Version: EntryVersion, DTA: 2, Domain: "d", Kind: KindPermit, Subject: h32, Slot: 9, SealedSHA256: h32, TicketSHA256: h32, Time: 1},
		{Version: EntryVersion, DTA: 3, Domain: "d", Kind: KindServer, SealedSHA256: h32, TicketSHA256: h32, Time: 1},
		{Version: EntryVersion, DTA: 1, Domain: "d", Kind: KindRevoke, Subject: h32, TicketSHA256: h32, Time: 1},
		{Version: EntryVersion, DTA: 4, Domain: "d", Kind: KindKey, Serial: 3, TranscriptSHA256: h32, Commitment: c48, Time: 1},
		{Version: EntryVersion, DTA: 4, Domain: "d", Kind: KindKey, TranscriptSHA256: h32, Commitment: c48, Time: 1}, // serial 0
	}
	for _, e := range ok {
		b, err := e.Marshal()
		if err != nil {
			t.Fatalf("%s: %v", e.Kind, err)
		}
		back, err := ParseEntry(b)
		if err != nil || *back != e {
			t.Fatalf("%s: round trip gave %+v, %v", e.Kind, back, err)
		}
	}
	base := ok[0]
	bad := map[string]func(*Entry){
		"fail/version-1":         func(e *Entry) { e.Version = 1 },
		"fail/version-3":         func(e *Entry) { e.Version = 3 },
		"fail/dta-zero":          func(e *Entry) { e.DTA = 0 },
		"fail/no-domain":         func(e *Entry) { e.Domain = "" },
		"fail/kind":              func(e *Entry) { e.Kind = "master" },
		"fail/subject-short":     func(e *Entry) { e.Subject = "0f" },
		"fail/subject-uppercase": func(e *Entry) { e.Subject = strings.ToUpper(h32) },
		"fail/client-with-slot":  func(e *Entry) { e.Slot = 3 },
		"fail/no-sealed-hash":    func(e *Entry) { e.SealedSHA256 = "" },
		"fail/no-ticket-hash":    func(e *Entry) { e.TicketSHA256 = "" },
		"fail/time":              func(e *Entry) { e.Time = 0 },
		"fail/server-subject":    func(e *Entry) { e.Kind = KindServer },
		"fail/revoke-sealed":     func(e *Entry) { e.Kind = KindRevoke },
		"fail/client-serial":     func(e *Entry) { e.Serial = 1 },
		"fail/client-transcript": func(e *Entry) { e.TranscriptSHA256 = h32 },
		"fail/client-commitment": func(e *Entry) { e.Commitment = c48 },
	}
	for name, mutate := range bad {
		e := base
		mutate(&e)
		if _, err := e.Marshal(); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	key := ok[4]
	badKey := map[string]func(*Entry){
		"fail/key-ticket":            func(e *Entry) { e.TicketSHA256 = h32 },
		"fail/key-subject":           func(e *Entry) { e.Subject = h32 },
		"fail/key-slot":              func(e *Entry) { e.Slot = 1 },
		"fail/key-sealed":            func(e *Entry) { e.SealedSHA256 = h32 },
		"fail/key-no-transcript":     func(e *Entry) { e.TranscriptSHA256 = "" },
		"fail/key-transcript-upper":  func(e *Entry) { e.TranscriptSHA256 = strings.ToUpper(h32) },
		"fail/key-no-commitment":     func(e *Entry) { e.Commitment = "" },
		"fail/key-commitment-short":  func(e *Entry) { e.Commitment = h32 },
		"fail/key-commitment-upper":  func(e *Entry) { e.Commitment = strings.ToUpper(c48) },
		"fail/key-commitment-nonhex": func(e *Entry) { e.Commitment = "zz" + c48[2:] },
	}
	for name, mutate := range badKey {
		e := key
		mutate(&e)
		if _, err := e.Marshal(); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: got %v", name, err)
		}
	}
	// The largest key entry fits MaxEntrySize.
	big := key
	big.DTA, big.Domain, big.Serial, big.Time = 1<<32-1, strings.Repeat("d", 253), 1<<64-1, 1<<62
	if b, err := big.Marshal(); err != nil || len(b) > MaxEntrySize {
		t.Errorf("largest key entry: %d bytes, %v", len(b), err)
	} else if _, err := ParseEntry(b); err != nil {
		t.Errorf("largest key entry: %v", err)
	}
	for name, raw := range map[string]string{
		"fail/unknown-field": `{"v":2,"dta":1,"domain":"d","kind":"revoke","subject":"` + h32 + `","ticket_sha256":"` + h32 + `","time":1,"x":1}`,
		"fail/not-canonical": `{"dta":1,"v":2,"domain":"d","kind":"revoke","subject":"` + h32 + `","ticket_sha256":"` + h32 + `","time":1}`,
		"fail/trailing":      `{"v":2,"dta":1,"domain":"d","kind":"revoke","subject":"` + h32 + `","ticket_sha256":"` + h32 + `","time":1} `,
		"fail/oversized":     strings.Repeat(" ", MaxEntrySize+1),
		"fail/garbage":       "\x00\x01",
		"fail/v1-idhash":     `{"v":1,"dta":1,"domain":"d","kind":"revoke","idhash":"` + h32 + `","ticket_sha256":"` + h32 + `","time":1}`,
	} {
		if _, err := ParseEntry([]byte(raw)); !errors.Is(err, ErrEntry) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	e := Entry{Version: EntryVersion, DTA: 2, Domain: "d", Kind: KindPermit, Subject: h32, Slot: 9, SealedSHA256: h32, TicketSHA256: h32, Time: 1}
	b, _ := e.Marshal()
	f.Add(b)
	k := Entry{Version: EntryVersion, DTA: 1, Domain: "d", Kind: KindKey, Serial: 2, TranscriptSHA256: h32, Commitment: c48, Time: 1}
	b, _ = k.Marshal()
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, err := ParseEntry(raw)
		if err != nil {
			return
		}
		again, err := e.Marshal()
		if err != nil || string(again) != string(raw) {
			t.Fatalf("accepted %q but re-encodes to %q (%v)", raw, again, err)
		}
	})
}

// TestPromiseKnownAnswer checks the promise against the known answer of
// docs/protocol.md (6.4, "A DTA's answer"), whose message this test builds from that
// text alone, and that Verify refuses a promise changed in any field.
func TestPromiseKnownAnswer(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	pub := key.Public().(ed25519.PublicKey)
	const origin = "polyroot/api.example.com/dta-1"
	entry := []byte("entry")
	if got := hex.EncodeToString(pub); got != "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" {
		t.Fatalf("public key %s", got)
	}
	leaf := sha256.Sum256(append([]byte{0}, entry...))
	msg := []byte("polyroot/v1 issuance promise\x0a\x00\x00\x00\x1e" + origin + "\x00\x00\x00\x00\x00\x00\x00\x2a")
	msg = append(msg, leaf[:]...)
	want := ed25519.Sign(key, msg)
	if hex.EncodeToString(want) != "81a45fc8d1954bf71e2306f500dbdbe010bf992bd2d85ff0b846737fa2cc6cb82c5efc40297ffe0e902e10a147332a9d4eb30c4cd071396deb848d2ddac6ef07" ||
		hex.EncodeToString(leaf[:]) != "d9c2d66b522c2522728f539ff9f67b85d40defff095fc8a528c994f4f35bb3de" {
		t.Fatal("the known answer of docs/protocol.md does not follow from its text")
	}
	p := NewPromise(key, origin, 42, entry)
	if !bytes.Equal(p.Signature, want) || !bytes.Equal(p.LeafHash, leaf[:]) {
		t.Fatalf("NewPromise = %x, %x; want the known answer", p.LeafHash, p.Signature)
	}
	if err := p.Verify(pub, entry); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(p *Promise){
		"fail/origin":    func(p *Promise) { p.Origin += "x" },
		"fail/index":     func(p *Promise) { p.Index++ },
		"fail/leaf-hash": func(p *Promise) { p.LeafHash = append([]byte{}, p.LeafHash...); p.LeafHash[0] ^= 1 },
		"fail/signature": func(p *Promise) { p.Signature = append([]byte{}, p.Signature...); p.Signature[63] ^= 1 },
	} {
		q := *p
		change(&q)
		if err := q.Verify(pub, nil); !errors.Is(err, ErrPromise) {
			t.Errorf("%s: Verify = %v, want ErrPromise", name, err)
		}
	}
	if err := p.Verify(pub, []byte("other")); !errors.Is(err, ErrPromise) {
		t.Errorf("fail/other-entry: Verify = %v, want ErrPromise", err)
	}
}
