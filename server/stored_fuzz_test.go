package server

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/polyroot/polyroot/pairing"
)

// fuzzSealer returns a session sealer with a fixed token key, and a sealed login
// session of it: the seed of FuzzSessionState. (suiteVerifiers and suiteSession take
// a *testing.T, which a fuzz test's setup does not have.)
func fuzzSealer(f *testing.F) (*sessionSealer, *pending) {
	key, err := pairing.NewServerKey(pairing.G2Generator())
	if err != nil {
		f.Fatal(err)
	}
	v := &pairing.Verifier{Domain: pairing.Domain{Name: "example.com"}, Key: key}
	s, err := newSessionSealer(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize)), v, v)
	if err != nil {
		f.Fatal(err)
	}
	var id pairing.IDHash
	rand.Read(id[:])
	p1 := &pairing.Pass1{IDHash: id, U: pairing.G1Generator(), Z: pairing.G1Generator(), KEM: testKeyShare(f)}
	sess, _, err := v.Challenge(rand.Reader, p1, time.Now())
	if err != nil {
		f.Fatal(err)
	}
	return s, &pending{sess: sess, idhash: id, created: time.Unix(1_800_000_000, 123), days: 5}
}

// sessionPlaintext is what seal encrypts for p (version, created, flags, days,
// idhash, state), built here independently of seal, so that the fuzz test can seal
// any plaintext as a replica holding the key (of this or another version) could.
func sessionPlaintext(version byte, p *pending, flags byte) []byte {
	pt := []byte{version}
	pt = binary.BigEndian.AppendUint64(pt, uint64(p.created.UnixNano()))
	pt = append(pt, flags)
	pt = binary.BigEndian.AppendUint32(pt, uint32(p.days))
	pt = append(pt, p.idhash[:]...)
	return append(pt, p.state...)
}

// FuzzSessionState: a login session read from the store that replicas share either
// fails to restore (errSessionState) or restores exactly what its plaintext holds,
// and seals and opens again to the same session. With raw set the fuzzed bytes are
// the stored value itself (anyone who can write the database); otherwise they are the
// plaintext, sealed under the replicas' key (a replica of another version).
func FuzzSessionState(f *testing.F) {
	s, p := fuzzSealer(f)
	sealed, err := s.seal(p)
	if err != nil {
		f.Fatal(err)
	}
	id := p.sess.ID()
	f.Add(sealed, true)
	f.Add(sealed[:s.aead.NonceSize()], true)
	f.Add(sessionPlaintext(sessionStateVersion, p, 0), false)
	f.Add(sessionPlaintext(sessionStateVersion, p, sessionRenew|sessionUnbound|0x80), false)
	f.Add(sessionPlaintext(1, p, 0), false)
	f.Add(sessionPlaintext(sessionStateVersion, p, 0)[:1+8+1+4+pairing.IDHashSize], false)
	f.Add(sessionPlaintext(sessionStateVersion, &pending{sess: p.sess, state: p.state, days: -1}, 0), false)
	f.Fuzz(func(t *testing.T, b []byte, raw bool) {
		in := b
		if !raw {
			nonce := make([]byte, s.aead.NonceSize())
			in = s.aead.Seal(nonce, nonce, b, id[:])
		}
		got, err := s.open(id, bytes.Clone(in))
		if err != nil {
			if err != errSessionState || got != nil {
				t.Fatalf("open: %v, %v", got, err)
			}
			return
		}
		if raw {
			if pt, err := s.aead.Open(nil, b[:s.aead.NonceSize()], b[s.aead.NonceSize():], id[:]); err != nil {
				t.Fatalf("a stored value that does not authenticate restored a session")
			} else {
				b = pt
			}
		}
		if b[0] != sessionStateVersion || got.created.UnixNano() != int64(binary.BigEndian.Uint64(b[1:])) ||
			got.renew != (b[9]&sessionRenew != 0) || got.unbound != (b[9]&sessionUnbound != 0) ||
			uint32(got.days) != binary.BigEndian.Uint32(b[10:]) || !bytes.Equal(got.idhash[:], b[14:14+pairing.IDHashSize]) ||
			got.sess.ID() != id {
			t.Fatalf("restored %+v from %x", got, b)
		}
		got.state = nil // seal marshals the session again
		again, err := s.seal(got)
		if err != nil {
			t.Fatalf("a restored session does not seal: %v", err)
		}
		p2, err := s.open(id, again)
		if err != nil {
			t.Fatalf("a restored session, sealed again, does not open: %v", err)
		}
		if !p2.created.Equal(got.created) || p2.renew != got.renew || p2.unbound != got.unbound || p2.days != got.days ||
			p2.idhash != got.idhash || !bytes.Equal(p2.state, got.state) {
			t.Fatalf("the session changed on a round trip: %+v, %+v", got, p2)
		}
	})
}

// FuzzFailRecord: a stored failure record either is refused or decodes to a record
// that encodes to a value that decodes the same (with only the flags it knows).
func FuzzFailRecord(f *testing.F) {
	f.Add(failRecord{Count: 3, Day: 7, DayStart: time.Unix(1_800_000_000, 0), Held: true}.encode())
	f.Add(failRecord{Count: 1}.encode())
	f.Add([]byte{0, 0, 0, 9})
	f.Add(bytes.Repeat([]byte{0xff}, failRecordSize))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		r, ok := decodeFailRecord(v)
		if !ok {
			if len(v) == 4 || len(v) == failRecordSize {
				t.Fatalf("a record of %d bytes refused", len(v))
			}
			return
		}
		if r.Count < 0 || r.Day < 0 {
			t.Fatalf("negative counts %+v from %x", r, v)
		}
		r2, ok := decodeFailRecord(r.encode())
		if !ok || r2.Count != r.Count || r2.Day != r.Day || !r2.DayStart.Equal(r.DayStart) || r2.DayStart.IsZero() != r.DayStart.IsZero() || r2.Held != r.Held {
			t.Fatalf("the record changed on a round trip: %+v, %+v", r, r2)
		}
	})
}

// FuzzOIDCRecord: an OpenID Provider record read from the bolt store is live, with
// exactly the value written after its expiry, only before that expiry.
func FuzzOIDCRecord(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add(oidcRecord([]byte("value"), now.Add(time.Minute)))
	f.Add(oidcRecord(nil, now))
	f.Add(oidcRecord([]byte("v"), now.Add(-time.Minute)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, rec []byte) {
		v, ok := liveOIDC(rec, now)
		if !ok {
			if v != nil {
				t.Fatal("a dead record with a value")
			}
			return
		}
		if len(rec) < 8 || int64(binary.BigEndian.Uint64(rec)) <= now.UnixNano() || !bytes.Equal(v, rec[8:]) {
			t.Fatalf("live value %x from %x", v, rec)
		}
		exp := time.Unix(0, int64(binary.BigEndian.Uint64(rec)))
		if v2, ok := liveOIDC(oidcRecord(v, exp), now); !ok || !bytes.Equal(v2, v) {
			t.Fatalf("the record changed on a round trip: %x, %x", v, v2)
		}
	})
}
