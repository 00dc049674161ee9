package dkg

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/polyroot/polyroot/pairing"
)

func TestTranscript(t *testing.T) {
	rng := testRNG("transcript")
	nodes := newNodes(t, rng, 1, 2, 3, 4, 5)
	s := newSession(nodes, 3)
	h := badShareTo(s, nodes, 3)
	res, _, msgs, err := run(t, s, nodes, nil, rng, hooks{5: func(k Kind, m *Message, key ed25519.PrivateKey) []*Message {
		if k == KindAnswer {
			return nil
		}
		return h(k, m, key)
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTranscript(s, msgs, res)
	data, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseTranscript(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if !got.PublicKey.Equal(res.PublicKey) || !strings.Contains(string(data), "did not answer the complaint of DTA 3") {
		t.Fatal("transcript lost the result")
	}
	again, _ := json.Marshal(back)
	if !bytes.Equal(again, data) {
		t.Fatal("transcript does not round-trip")
	}

	// Tampering: a changed result, a dropped message, a forged message.
	tamper := func(name string, f func(tr *Transcript)) {
		tr, _ := ParseTranscript(data)
		f(tr)
		if _, err := tr.Verify(); err == nil {
			t.Errorf("%s: tampered transcript verifies", name)
		}
	}
	tamper("public key", func(tr *Transcript) { tr.Result.PublicKey = tr.Result.PublicKey.Add(pairing.G1Generator()) })
	tamper("fault", func(tr *Transcript) { tr.Result.Faults = nil })
	tamper("qualified", func(tr *Transcript) { tr.Result.Qualified = append(tr.Result.Qualified, 5) })
	tamper("complaint dropped", func(tr *Transcript) {
		for k, m := range tr.Messages {
			if m.Kind == KindComplaint && m.From == 3 {
				tr.Messages = append(tr.Messages[:k], tr.Messages[k+1:]...)
				return
			}
		}
	})
	tamper("forged", func(tr *Transcript) { tr.Messages[0].Points[0] = tr.Messages[0].Points[1] })
	tamper("threshold", func(tr *Transcript) { tr.Session.Threshold = 2 })
}

func TestDecodeStrict(t *testing.T) {
	rng := testRNG("decode")
	nodes := newNodes(t, rng, 1, 2, 3)
	s := newSession(nodes, 2)
	_, _, msgs, err := run(t, s, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		b := m.Bytes()
		back, err := DecodeMessage(b)
		if err != nil || !bytes.Equal(back.Bytes(), b) {
			t.Fatalf("%s: %v", m.Kind, err)
		}
		if _, err := DecodeMessage(append(b, 0)); err == nil {
			t.Fatal("trailing byte accepted")
		}
		if _, err := DecodeMessage(b[:len(b)-1]); err == nil {
			t.Fatal("truncation accepted")
		}
	}
	// Identity points and zero scalars are rejected.
	m := *msgs[0]
	b := m.Bytes()
	off := len(magic) + 32 + 1 + 4 + 2
	bad := append([]byte(nil), b...)
	copy(bad[off:off+48], append([]byte{0xc0}, make([]byte, 47)...))
	if _, err := DecodeMessage(bad); err == nil {
		t.Fatal("identity accepted")
	}
	ans := &Message{Session: m.Session, Kind: KindAnswer, From: 1, Pairs: []Pair{{Index: 1, F: pairing.NewScalar(1), G: pairing.NewScalar(1)}}, Signature: make([]byte, 64)}
	ab := ans.Bytes()
	zero := bytes.Replace(ab, pairing.NewScalar(1).Bytes(), make([]byte, 32), 1)
	if _, err := DecodeMessage(zero); err == nil {
		t.Fatal("zero scalar accepted")
	}
	if _, _, err := decodeSharePayload(make([]byte, 64), true); err == nil {
		t.Fatal("zero share accepted")
	}
}

// DecodeAccepted accepts what DecodeMessage and Accept accept, and refuses a message of
// another session, of a DTA that may not send it, or with a bad signature before it
// decodes any point: a bad point in such a message is not what it reports.
func TestDecodeAccepted(t *testing.T) {
	rng := testRNG("decode accepted")
	nodes := newNodes(t, rng, 1, 2, 3)
	s := newSession(nodes, 2)
	_, _, msgs, err := run(t, s, nodes, nil, rng, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.ID()
	for _, m := range msgs {
		back, err := s.DecodeAccepted(m.Bytes(), id)
		if err != nil || !bytes.Equal(back.Bytes(), m.Bytes()) {
			t.Fatalf("%s from %d: %v", m.Kind, m.From, err)
		}
	}
	deal := msgs[0].Bytes()
	if msgs[0].Kind != KindDeal {
		t.Fatalf("first message: %s", msgs[0].Kind)
	}
	hdr := len(magic) + 32 + 1 + 4
	// badPoint puts a point that is not on the curve first, and set(b) the header.
	badPoint := func(set func(b []byte)) []byte {
		b := append([]byte(nil), deal...)
		copy(b[hdr+2:hdr+2+48], append([]byte{0x9f}, bytes.Repeat([]byte{0xff}, 47)...))
		set(b)
		return b
	}
	resign := func(b []byte) []byte {
		n := len(b) - ed25519.SignatureSize
		copy(b[n:], ed25519.Sign(nodes[0].key, append([]byte(sigContext), b[:n]...)))
		return b
	}
	other := id
	other[0] ^= 1
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"fail/unsigned, bad point", badPoint(func([]byte) {}), "deal from DTA 1: bad signature"},
		{"fail/another session, bad point", badPoint(func(b []byte) { copy(b[len(magic):], other[:]) }), "another session"},
		{"fail/not a dealer, bad point", badPoint(func(b []byte) { b[hdr-1] = 9 }), "deal from DTA 9, who may not send it"},
		{"fail/signed by another", resign(badPoint(func(b []byte) { b[hdr-1] = 2 })), "deal from DTA 2: bad signature"},
		{"fail/signed, bad point", resign(badPoint(func([]byte) {})), "malformed message: point"},
		{"fail/signed, trailing byte", resign(append(append([]byte(nil), deal[:len(deal)-64]...), append([]byte{0}, deal[len(deal)-64:]...)...)), "malformed message"},
		{"fail/no kind", append([]byte(nil), deal[:hdr-4]...), "malformed message: truncated"},
		{"fail/no signature", append([]byte(nil), deal[:hdr+60]...), "malformed message: truncated"},
		{"fail/kind 7", func() []byte { b := append([]byte(nil), deal...); b[hdr-5] = 7; return b }(), "malformed message: kind 7"},
		{"fail/magic", append([]byte("PRDKG\x02"), deal[len(magic):]...), "malformed message: bad magic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.DecodeAccepted(tc.b, id)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(tc.name, "another session") != errors.Is(err, ErrOtherSession) {
				t.Fatalf("errors.Is(%v, ErrOtherSession) = %v", err, !strings.Contains(tc.name, "another session"))
			}
		})
	}
}

func FuzzDecodeMessage(f *testing.F) {
	rng := testRNG("fuzz")
	nodes := newNodes(f, rng, 1, 2, 3)
	s := newSession(nodes, 2)
	_, _, msgs, _ := run(f, s, nodes, nil, rng, nil)
	for _, m := range msgs {
		f.Add(m.Bytes())
	}
	id, _ := s.ID()
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		ma, aerr := s.DecodeAccepted(b, id)
		if err == nil && s.Accept(m, id) == nil {
			if aerr != nil || !bytes.Equal(ma.Bytes(), b) {
				t.Fatalf("DecodeAccepted refuses what DecodeMessage and Accept take: %v", aerr)
			}
		} else if aerr == nil {
			t.Fatal("DecodeAccepted takes what DecodeMessage or Accept refuses")
		}
		if err != nil {
			return
		}
		if !bytes.Equal(m.Bytes(), b) {
			t.Fatal("accepted a non-canonical encoding")
		}
	})
}

func FuzzSharePayload(f *testing.F) {
	f.Add(append(pairing.NewScalar(3).Bytes(), pairing.NewScalar(4).Bytes()...), true)
	f.Add(pairing.NewScalar(3).Bytes(), false)
	f.Fuzz(func(t *testing.T, b []byte, ped bool) {
		fv, g, err := decodeSharePayload(b, ped)
		if err != nil {
			return
		}
		if !bytes.Equal(sharePayload(fv, g), b) {
			t.Fatal("accepted a non-canonical share")
		}
	})
}

func FuzzParseTranscript(f *testing.F) {
	rng := testRNG("fuzz transcript")
	nodes := newNodes(f, rng, 1, 2, 3)
	s := newSession(nodes, 2)
	res, _, msgs, _ := run(f, s, nodes, nil, rng, nil)
	data, _ := json.Marshal(NewTranscript(s, msgs, res))
	f.Add(data)
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := ParseTranscript(b)
		if err != nil {
			return
		}
		tr.Verify() // must not panic
	})
}

func BenchmarkDKG(b *testing.B) {
	for _, n := range []int{5, 16} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			rng := testRNG("bench")
			var idx []uint32
			for i := 1; i <= n; i++ {
				idx = append(idx, uint32(i))
			}
			nodes := newNodes(b, rng, idx...)
			s := newSession(nodes, n/2+1)
			for b.Loop() {
				if _, _, _, err := run(b, s, nodes, nil, rng, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
