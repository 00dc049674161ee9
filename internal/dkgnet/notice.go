package dkgnet

import (
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/polyroot/polyroot/internal/dkg"
)

// A notice is a small signed statement of a party, outside the dkg messages:
//
//   - hello: "my seal key for the session whose file hashes to bind is value";
//   - done: "I have posted everything I will post in round kind" (bind: session ID);
//   - confirm: "the transcript of session bind hashes to value".
//
// Encoding (169 bytes): "PRDKGN" 0x01 ‖ type u8 ‖ round u8 ‖ bind[32] ‖ signer[32] ‖
// value[32] ‖ signature[64], the signature Ed25519 over noticeContext ‖ everything
// before it. Round is the dkg.Kind of a done notice and 0 otherwise.
type notice struct {
	typ    noticeType
	round  dkg.Kind
	bind   [32]byte
	signer [32]byte
	value  [32]byte
	sig    [64]byte
}

type noticeType uint8

const (
	noticeHello   noticeType = 1
	noticeDone    noticeType = 2
	noticeConfirm noticeType = 3
)

const (
	noticeMagic   = "PRDKGN\x01"
	noticeContext = "polyroot/v1 dkgnet notice\x00"
	noticeSize    = len(noticeMagic) + 2 + 32*3 + ed25519.SignatureSize
)

var errNotice = errors.New("dkgnet: malformed notice")

func (n *notice) body() []byte {
	b := append([]byte(noticeMagic), byte(n.typ), byte(n.round))
	b = append(b, n.bind[:]...)
	b = append(b, n.signer[:]...)
	return append(b, n.value[:]...)
}

func (n *notice) bytes() []byte { return append(n.body(), n.sig[:]...) }

func newNotice(key ed25519.PrivateKey, typ noticeType, round dkg.Kind, bind, value [32]byte) *notice {
	n := &notice{typ: typ, round: round, bind: bind, value: value}
	copy(n.signer[:], key.Public().(ed25519.PublicKey))
	copy(n.sig[:], ed25519.Sign(key, append([]byte(noticeContext), n.body()...)))
	return n
}

// verify checks the signature against the signer's key.
func (n *notice) verify() error {
	if !ed25519.Verify(n.signer[:], append([]byte(noticeContext), n.body()...), n.sig[:]) {
		return fmt.Errorf("dkgnet: %s notice: bad signature", n.typ)
	}
	return nil
}

func (t noticeType) String() string {
	switch t {
	case noticeHello:
		return "hello"
	case noticeDone:
		return "done"
	case noticeConfirm:
		return "confirm"
	}
	return fmt.Sprintf("noticeType(%d)", uint8(t))
}

// decodeNotice decodes a notice strictly; it does not check the signature.
func decodeNotice(b []byte) (*notice, error) {
	if len(b) != noticeSize || string(b[:len(noticeMagic)]) != noticeMagic {
		return nil, fmt.Errorf("%w: want %d bytes starting %q", errNotice, noticeSize, noticeMagic)
	}
	b = b[len(noticeMagic):]
	n := &notice{typ: noticeType(b[0]), round: dkg.Kind(b[1])}
	switch {
	case n.typ == noticeDone && (n.round < dkg.KindDeal || n.round > dkg.KindReveal),
		(n.typ == noticeHello || n.typ == noticeConfirm) && n.round != 0,
		n.typ < noticeHello || n.typ > noticeConfirm:
		return nil, fmt.Errorf("%w: type %d, round %d", errNotice, b[0], b[1])
	}
	b = b[2:]
	copy(n.bind[:], b[:32])
	copy(n.signer[:], b[32:64])
	copy(n.value[:], b[64:96])
	copy(n.sig[:], b[96:])
	return n, nil
}
